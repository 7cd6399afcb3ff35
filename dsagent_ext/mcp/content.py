"""Content blocks for MCP results: images sized for a model to look at, text capped, notebooks as text."""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

from mcp.types import ImageContent, TextContent

MAX_SIDE = 1568  # pixels: larger images are scaled down (what vision models resize to anyway)
MAX_IMAGE_BYTES = 1_000_000  # larger encoded images are scaled down / re-encoded
MAX_IMAGES = 8  # image blocks per result
TEXT_CAP = 20_000  # characters of one text (an artifact, all outputs of a notebook read)
OUTPUT_CAP = 4_000  # characters of one cell's output
IMAGE_MIMES = {"image/png": "png", "image/jpeg": "jpeg"}


def cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… [{len(text) - limit} more characters]"


def image_block(data: bytes, mime: str) -> ImageContent | None:
    """An image content block, scaled down when large; None for what is not a PNG or JPEG image."""
    if mime not in IMAGE_MIMES:
        return None
    if len(data) > MAX_IMAGE_BYTES or _too_large(data):
        data, mime = _downscale(data, mime)
    return ImageContent(type="image", data=base64.b64encode(data).decode(), mimeType=mime)


def b64_image_block(data: str, mime: str) -> ImageContent | None:
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        return None
    return image_block(raw, mime)


def _too_large(data: bytes) -> bool:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return max(image.size) > MAX_SIDE
    except Exception:  # not an image Pillow reads: leave it as it is
        return False


def _downscale(data: bytes, mime: str) -> tuple[bytes, str]:
    """Fit within MAX_SIDE; a PNG still too heavy becomes a JPEG."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail((MAX_SIDE, MAX_SIDE))
            out = io.BytesIO()
            image.save(out, format=IMAGE_MIMES[mime].upper())
            if out.tell() > MAX_IMAGE_BYTES:
                out = io.BytesIO()
                image.convert("RGB").save(out, format="JPEG", quality=85)
                mime = "image/jpeg"
            return out.getvalue(), mime
    except Exception:  # unreadable: send it as it came
        return data, mime


def text_block(text: str) -> TextContent:
    return TextContent(type="text", text=text)


def outputs_text(outputs: list[dict[str, Any]]) -> tuple[str, list[tuple[str, str]]]:
    """nbformat outputs as text, and their PNG/JPEG images as ``(base64, mime)`` pairs."""
    parts: list[str] = []
    images: list[tuple[str, str]] = []
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            parts.append(_joined(output.get("text", "")))
        elif kind == "error":
            parts.append(f"{output.get('ename', 'Error')}: {output.get('evalue', '')}")
        elif kind in ("execute_result", "display_data"):
            data = output.get("data") or {}
            image = next((m for m in IMAGE_MIMES if m in data), None)
            if image is not None:
                images.append((_joined(data[image]).replace("\n", ""), image))
                parts.append(f"[image {image}]")
            elif "text/plain" in data:
                parts.append(_joined(data["text/plain"]))
    return cap("\n".join(p.rstrip("\n") for p in parts if p), OUTPUT_CAP), images


def _joined(value: str | list[str]) -> str:
    return "".join(value) if isinstance(value, list) else value
