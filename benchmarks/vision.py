"""What a figure adds to a model request: the raw PNG as the kernel displays it, next to what is sent.

``python benchmarks/vision.py [--sides 1024,512] [--repeat 5]`` draws typical matplotlib figures (as the
inline backend renders them: ``savefig(format="png", bbox_inches="tight")``), prepares each one as the
agent does for a vision model (``engine/vision.prepare``: downscaled to the side, PNG or JPEG whichever is
smaller) and prints, per figure: the raw PNG (bytes, and the base64 characters sending it as it is would
add, the floor), what the request carries (the data URL's characters), their ratio, the tokens OpenAI
charges for the image part, and the CPU time of the preparation. No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from fake_llm import image_tokens  # noqa: E402

from dsagent_ext.engine.vision import prepare  # noqa: E402


def _line() -> plt.Figure:
    fig, ax = plt.subplots()  # matplotlib's default 6.4 x 4.8 in
    x = np.arange(120)
    ax.plot(x, np.cumsum(np.random.default_rng(1).normal(size=120)), label="revenue")
    ax.set(title="Monthly revenue", xlabel="month", ylabel="k$")
    ax.legend()
    return fig


def _scatter() -> plt.Figure:
    rng = np.random.default_rng(2)
    fig, ax = plt.subplots(figsize=(10, 6), dpi=150)
    points = ax.scatter(rng.normal(size=20_000), rng.normal(size=20_000), c=rng.random(20_000), s=4, cmap="viridis")
    fig.colorbar(points)
    return fig


def _dashboard() -> plt.Figure:
    rng = np.random.default_rng(3)
    fig, axes = plt.subplots(2, 3, figsize=(16, 10), dpi=150)
    for n, ax in enumerate(axes.flat):
        ax.hist(rng.normal(n, 1 + n / 3, 5_000), bins=60)
        ax.set_title(f"feature {n}")
    return fig


def _heatmap() -> plt.Figure:
    rng = np.random.default_rng(4)
    fig, ax = plt.subplots(figsize=(8, 8), dpi=150)
    image = ax.imshow(rng.random((60, 60)) + np.linspace(0, 1, 60), cmap="magma")
    fig.colorbar(image)
    return fig


def _smooth() -> plt.Figure:
    """A photo-like image (a smooth field, every pixel different): where JPEG wins."""
    y, x = np.mgrid[0:600, 0:900]
    field = np.sin(x / 37.0) * np.cos(y / 23.0) + np.random.default_rng(5).normal(0, 0.05, (600, 900))
    fig = plt.figure(figsize=(9, 6), dpi=100)
    fig.figimage(field, cmap="terrain", resize=True)
    return fig


FIGURES: dict[str, Callable[[], plt.Figure]] = {
    "line chart (default size)": _line,
    "scatter 20k points, dpi 150": _scatter,
    "dashboard 2x3 hist, 16x10 in, dpi 150": _dashboard,
    "heatmap 60x60, dpi 150": _heatmap,
    "photo-like field 900x600": _smooth,
}


def render(make: Callable[[], plt.Figure]) -> bytes:
    fig = make()
    out = io.BytesIO()
    fig.savefig(out, format="png", bbox_inches="tight")
    plt.close(fig)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", default="1024,512", help="vision_max_side values, comma-separated")
    parser.add_argument("--repeat", type=int, default=5, help="preparations timed per figure and side")
    args = parser.parse_args()
    sides = [int(s) for s in args.sides.split(",")]
    header = (
        f"{'figure':40} {'px':>10} {'raw PNG':>9} {'as base64':>10} {'side':>5} {'sent':>5} {'sent px':>9} "
        f"{'added':>9} {'ratio':>6} {'tokens':>6} {'ms':>6}"
    )
    print(header)
    print("-" * len(header))
    total_raw = total_sent = 0
    for name, make in FIGURES.items():
        raw = render(make)
        data = base64.b64encode(raw).decode()
        for side in sides:
            times = []
            for _ in range(args.repeat):
                start = time.process_time()
                picture = prepare("image/png", data, side)
                times.append((time.process_time() - start) * 1000)
            assert picture is not None
            kind = picture.url[len("data:image/") : picture.url.index(";")]
            from PIL import Image

            with Image.open(io.BytesIO(raw)) as source:
                size = f"{source.size[0]}x{source.size[1]}"
            added = len(picture.url)  # characters the image part adds to the request body
            total_raw += len(data)
            total_sent += added
            print(
                f"{name:40} {size:>10} {len(raw) / 1024:>7.1f}KB {len(data) / 1024:>8.1f}KB {side:>5} {kind:>5} "
                f"{picture.width}x{picture.height:<4} {added / 1024:>7.1f}KB {added / len(data):>6.2f} "
                f"{image_tokens(picture.url):>6} {sorted(times)[len(times) // 2]:>6.1f}"
            )
    print("-" * len(header))
    print(
        f"all figures: {total_sent / 1024:.0f} KB added to requests against {total_raw / 1024:.0f} KB for the raw "
        f"PNGs as base64 (ratio {total_sent / total_raw:.2f}); 'ms': median CPU time of one preparation"
    )


if __name__ == "__main__":
    main()
