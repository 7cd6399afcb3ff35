"""What a vision model is shown: the figures a cell displays, downscaled, as image parts of a message.

A chart costs the model what the provider charges for an image (OpenAI: 85-765 tokens at 1024 px),
not the 70-100 k characters of its base64 text, and only when the model accepts images. Every image
is downscaled to ``max_side`` pixels on its long side and sent as PNG or JPEG, whichever is smaller;
an SVG is rasterised with cairosvg when libcairo is there, else it is described in words. At most
``max_images`` go with one request, and only the latest ones stay in the conversation.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

from ..models import ImageOutput
from ..settings import VisionMode, VisionSettings
from .llm import LLMClient

JPEG_QUALITY = 85
_RASTER = ("image/png", "image/jpeg")
_SVG = "image/svg+xml"
_PIXELS_PER = {"": 1, "px": 1, "pt": 96 / 72, "pc": 16, "in": 96, "cm": 96 / 2.54, "mm": 96 / 25.4, "em": 16, "ex": 8}
_LENGTH = re.compile(r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zA-Z%]*)")


@dataclass(frozen=True)
class Picture:
    """One image as it is sent: a data URL, and what it weighed before."""

    url: str
    raw_bytes: int  # the image as the kernel displayed it (decoded)
    sent_bytes: int  # the encoded image sent (decoded; the URL is 4/3 of it)
    width: int
    height: int


async def sees_images(llm: LLMClient, model: str, mode: VisionMode) -> bool:
    """Whether this model is shown images: ``on``/``off`` say so; ``auto`` asks litellm (``supports_vision``,
    in the model worker: the server does not load litellm for it)."""
    if mode != "auto":
        return mode == "on"
    return await llm.accepts_images(model)


def prepare(mime: str, data: str, max_side: int) -> Picture | None:
    """The image downscaled for the model, or None when it cannot be read (or rasterised)."""
    from PIL import Image

    raw = _decode(mime, data)
    if raw is None:
        return None
    try:
        if mime == _SVG:
            raw_size = len(raw)
            raw = _rasterise(raw, max_side)
            if raw is None:
                return None
        else:
            raw_size = len(raw)
        with Image.open(io.BytesIO(raw)) as image:
            image.load()
            source_format = image.format
            resized = max(image.size) > max_side
            if resized:
                image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            flat = _flatten(image)
            candidates = [_encode(flat, "PNG"), _encode(flat, "JPEG")]
            if not resized and flat is image and mime in _RASTER and source_format in ("PNG", "JPEG"):
                candidates.append((source_format.lower(), raw))  # already small: its own bytes may be smallest
            width, height = flat.size
    except Exception:  # not an image PIL reads, or one too large to decode safely
        return None
    kind, best = min(candidates, key=lambda c: len(c[1]))
    url = f"data:image/{kind};base64,{base64.b64encode(best).decode()}"
    return Picture(url=url, raw_bytes=raw_size, sent_bytes=len(best), width=width, height=height)


def _decode(mime: str, data: Any) -> bytes | None:
    text = "".join(data) if isinstance(data, list) else str(data or "")
    if mime == _SVG:
        return text.encode()
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):  # e.g. a client's "<image/png omitted>"
        return None


def _rasterise(svg: bytes, max_side: int) -> bytes | None:
    """PNG bytes of an SVG drawn at most ``max_side`` pixels on its long side (it may declare any size,
    and drawn at that size it could take all the memory), or None when it declares no size, or
    cairosvg (or the libcairo it needs) is missing or fails."""
    size = _declared_size(svg)
    if size is None:
        return None
    scale = min(1.0, max_side / max(size))
    width, height = (max(1, round(side * scale)) for side in size)
    try:
        import cairosvg
    except (ImportError, OSError):  # OSError: the cairo library is not installed
        return None
    try:
        return cairosvg.svg2png(bytestring=svg, unsafe=False, output_width=width, output_height=height)
    except Exception:
        return None


def _declared_size(svg: bytes) -> tuple[float, float] | None:
    """The root element's width and height in CSS pixels (else its viewBox's), as cairosvg would draw it."""
    try:  # the root element only: parsing stops at its start tag
        _, root = next(ElementTree.iterparse(io.BytesIO(svg), events=("start",)))
    except (ElementTree.ParseError, StopIteration):
        return None
    width, height = _length(root.get("width")), _length(root.get("height"))
    if width is None or height is None:
        box = (root.get("viewBox") or "").replace(",", " ").split()
        width, height = (_length(box[2]), _length(box[3])) if len(box) == 4 else (None, None)
    return (width, height) if width and height else None


def _length(value: str | None) -> float | None:
    """An SVG length in CSS pixels ("100", "72pt", "1e3px"); None for a percentage, an unknown unit or none."""
    match = _LENGTH.fullmatch((value or "").strip())
    per_unit = _PIXELS_PER.get(match.group(2).lower()) if match else None
    return float(match.group(1)) * per_unit if match and per_unit else None


def _flatten(image: Any) -> Any:
    """The image on white, as a notebook shows it: a transparent figure must not reach the model black."""
    from PIL import Image

    if image.mode in ("RGB", "L"):
        return image
    rgba = image.convert("RGBA")
    flat = Image.new("RGB", rgba.size, (255, 255, 255))
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat


def _encode(image: Any, kind: str) -> tuple[str, bytes]:
    out = io.BytesIO()
    if kind == "JPEG":
        image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
        return "jpeg", out.getvalue()
    image.save(out, "PNG")  # optimize=True costs 3-4x the time for 1-2 % fewer bytes
    return "png", out.getvalue()


async def prepare_all(images: Iterable[tuple[str, Any]], settings: VisionSettings) -> list[Picture | None]:
    """The first ``max_images`` of ``(mime, data)`` images prepared, in order (None: could not be).

    The decoding and encoding (tens of milliseconds an image) run in a thread, off the event loop.
    """
    wanted = list(images)[: settings.max_images]
    if not wanted:
        return []
    return await asyncio.to_thread(lambda: [prepare(mime, data, settings.max_side) for mime, data in wanted])


async def cell_pictures(images: Sequence[ImageOutput], settings: VisionSettings) -> tuple[str, list[Picture]]:
    """The feedback's sentence about a cell's images, and the pictures that go with it."""
    prepared = await prepare_all(((image.mime, image.data) for image in images), settings)
    pictures = [p for p in prepared if p is not None]
    return images_note(len(images), pictures, len(prepared) - len(pictures)), pictures


def images_note(displayed: int, pictures: list[Picture], unreadable: int) -> str:
    """The feedback's sentence about a cell's images, for a model that is shown them."""
    parts = [f"It displayed {displayed} image(s)"]
    if pictures:
        parts.append(f"; the first {len(pictures)} follow this message" if len(pictures) < displayed else "; they follow this message")
        parts.append(" (downscaled). Look at them: check that the chart shows what you intended before you go on.")
    else:
        parts.append(".")
    if unreadable:
        parts.append(f" {unreadable} of them could not be converted for you (e.g. an SVG): you cannot see those.")
    return "".join(parts)


def with_pictures(text: str, pictures: list[Picture]) -> str | list[dict[str, Any]]:
    """A message's content: the text alone, or the text then the images (OpenAI's content parts)."""
    if not pictures:
        return text
    return [{"type": "text", "text": text}, *({"type": "image_url", "image_url": {"url": p.url}} for p in pictures)]


def count_images(content: Any) -> int:
    return sum(1 for part in content if part.get("type") == "image_url") if isinstance(content, list) else 0


def drop_images(messages: list[dict[str, Any]]) -> None:
    """Replace the images of earlier messages with a short note: only the latest ones stay."""
    for message in messages:
        content = message.get("content")
        shown = count_images(content)
        if not shown:
            continue
        text = "\n".join(part.get("text", "") for part in content if part.get("type") == "text")
        message["content"] = f"{text}\n[{shown} image(s) shown with this message earlier were removed to save context.]"


# --- the user's notebook: which cells' images go with the task's message ----------------------------

FIGURE_WORDS = re.compile(r"\b(chart|plot|graph|figure|fig|image|picture|visuali[sz]ation|diagram|histogram)s?\b", re.I)
_CELL_REF = re.compile(
    r"\bcells?\s*(?:#|no\.?\s*|number\s*)?(\[?\d+\]?(?:\s*(?:,|and|&|or|-|to)\s*\[?\d+\]?)*)", re.I
)
_ITEM = re.compile(r"(\[)?(\d+)\]?(?:\s*(?:-|to)\s*\[?(\d+)\]?)?")
_PROMPT_REF = re.compile(r"\b(?:In|Out)\s*\[(\d+)\]")
CellRef = tuple[str, int]  # ("index", n): the notebook view's [n]; ("count", n): the cell that ran as n


def referenced_cells(message: str) -> list[CellRef]:
    """The cells a message names: ``cell [4]`` (the notebook view's index, as the panel's quick actions
    write it), ``cell 4``, ``cells 3 and 5``, ``cells 2-4``, ``In [4]``, ``Out[4]`` (execution counts)."""
    refs: list[CellRef] = []
    for match in _CELL_REF.finditer(message):
        for item in _ITEM.finditer(match.group(1)):
            low = int(item.group(2))
            high = int(item.group(3) or low)
            kind = "index" if item.group(1) else "count"
            refs += [(kind, n) for n in range(low, min(high, low + 20) + 1)]
    refs += [("count", int(n)) for n in _PROMPT_REF.findall(message)]
    return list(dict.fromkeys(refs))


def notebook_cells_to_show(message: str, cells: Sequence[Any], active: int | None, selected: Sequence[int]) -> list[int]:
    """The indices of the cells whose images go with the task's message, most wanted first.

    The active and selected cells always. A cell the message names: ``cell [4]`` is the cell at index 4
    of the notebook view the model reads; ``cell 4`` (or ``In [4]``) is the cell JupyterLab labels
    ``[4]``, its execution count, or, when no cell ran as 4, the cell at index 4. A message about a chart
    that names no cell whose images can be shown, while the active cell has none, gets the nearest cell
    with images above the active cell.
    """
    def has_images(index: int) -> bool:
        return 0 <= index < len(cells) and bool(cell_images(cells[index]))

    wanted: list[int] = []
    if active is not None:
        wanted.append(active)
    wanted += list(selected)
    by_count = {cell.execution_count: i for i, cell in enumerate(cells) if getattr(cell, "execution_count", None) is not None}
    named = [n if kind == "index" else by_count.get(n, n) for kind, n in referenced_cells(message)]
    wanted += named
    if FIGURE_WORDS.search(message) and not any(has_images(i) for i in wanted):
        start = active if active is not None and 0 <= active < len(cells) else len(cells) - 1
        nearest = next((i for i in range(start, -1, -1) if has_images(i)), None)
        if nearest is not None:
            wanted.append(nearest)
    return [i for i in dict.fromkeys(wanted) if has_images(i)]


def cell_images(cell: Any) -> list[tuple[str, Any]]:
    """A notebook cell's images as ``(mime, data)``: one per output, PNG over JPEG over SVG."""
    images = []
    for output in getattr(cell, "outputs", None) or []:
        data = output.get("data") or {}
        mime = next((m for m in (*_RASTER, _SVG) if m in data), None)
        if mime is not None and not _omitted(data[mime]):
            images.append((mime, data[mime]))
    return images


def _omitted(value: Any) -> bool:
    """A client left the image out (``<image/png omitted>``)."""
    return isinstance(value, str) and value.startswith("<") and value.endswith("omitted>")


async def notebook_pictures(message: str, context: Any, settings: VisionSettings) -> tuple[str, list[Picture]]:
    """The images of the user's notebook that go with the task's message, and a line naming their cells."""
    indices = notebook_cells_to_show(message, context.cells, context.active_cell_index, context.selected_cell_indices)
    labelled = [(index, image) for index in indices for image in cell_images(context.cells[index])]
    labelled = labelled[: settings.max_images]
    prepared = await prepare_all((image for _, image in labelled), settings)
    shown = [(index, p) for (index, _), p in zip(labelled, prepared) if p is not None]
    if not shown:
        return "", []
    names = ", ".join(f"[{i}]" for i in dict.fromkeys(index for index, _ in shown))
    note = f"[The images in the outputs of notebook cell(s) {names} follow this message (downscaled).]"
    return note, [p for _, p in shown]
