"""The pieces of what a vision model is shown, on real images (Pillow, cairosvg): preparing an image,
keeping only the latest ones, and which notebook cells a message refers to."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image, ImageDraw

from dsagent_ext.engine.vision import (
    drop_images,
    notebook_cells_to_show,
    prepare,
    referenced_cells,
    with_pictures,
)
from dsagent_ext.models import NotebookCell


def encoded(image: Image.Image, kind: str = "PNG") -> str:
    out = io.BytesIO()
    image.save(out, kind)
    return base64.b64encode(out.getvalue()).decode()


def decoded(url: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def test_a_large_image_is_downscaled_keeping_its_shape():
    picture = prepare("image/png", encoded(Image.new("RGB", (3000, 1500), "white")), 1024)
    assert picture is not None and (picture.width, picture.height) == (1024, 512)
    assert decoded(picture.url).size == (1024, 512) and picture.sent_bytes < picture.raw_bytes


def test_a_small_image_is_never_enlarged_and_the_smaller_encoding_wins():
    noisy = Image.effect_noise((400, 300), 60).convert("RGB")  # every pixel different: JPEG wins
    picture = prepare("image/png", encoded(noisy), 1024)
    assert picture is not None and picture.url.startswith("data:image/jpeg;base64,")
    assert decoded(picture.url).size == (400, 300)
    chart = Image.new("RGB", (400, 300), "white")  # few colours, sharp edges: PNG wins
    draw = ImageDraw.Draw(chart)
    for x in range(0, 400, 20):
        draw.line([(x, 0), (400 - x, 300)], fill="black", width=1)
    picture = prepare("image/png", encoded(chart), 1024)
    assert picture is not None and picture.url.startswith("data:image/png;base64,")


def test_transparency_is_flattened_on_white():
    image = Image.effect_noise((300, 300), 60).convert("RGBA")
    image.putalpha(0)  # fully transparent: shows white in a notebook
    picture = prepare("image/png", encoded(image), 128)
    assert picture is not None
    assert all(channel >= 250 for channel in decoded(picture.url).convert("RGB").getpixel((64, 64)))


def test_what_cannot_be_read_is_not_sent():
    assert prepare("image/png", "<image/png omitted>", 1024) is None
    assert prepare("image/png", base64.b64encode(b"not an image").decode(), 1024) is None
    assert prepare("image/svg+xml", "<svg broken", 1024) is None


def test_svg_is_rasterised_and_downscaled():
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="2000" height="1000"><rect width="2000" height="1000" fill="blue"/></svg>'
    picture = prepare("image/svg+xml", svg, 500)
    assert picture is not None and decoded(picture.url).size == (500, 250)


def test_an_svg_is_drawn_at_most_at_the_largest_side_whatever_size_it_declares():
    # drawn at its own size, this one would need 20 GB (and cairo refuses sides over 32767 px)
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="75000pt" height="37500pt"><rect width="100%" height="100%" fill="red"/></svg>'
    picture = prepare("image/svg+xml", svg, 500)
    assert picture is not None and decoded(picture.url).size == (500, 250)
    assert decoded(picture.url).convert("RGB").getpixel((250, 125)) == (255, 0, 0)
    # its size from the viewBox when width and height are relative, as matplotlib's are not but others' are
    boxed = '<svg xmlns="http://www.w3.org/2000/svg" width="100%" viewBox="0 0 300 900"><rect width="300" height="900"/></svg>'
    picture = prepare("image/svg+xml", boxed, 600)
    assert picture is not None and decoded(picture.url).size == (200, 600)
    # no size at all: not drawn, described in words
    assert prepare("image/svg+xml", '<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>', 500) is None


def test_only_the_latest_images_stay():
    image = prepare("image/png", encoded(Image.new("RGB", (10, 10))), 64)
    assert image is not None
    messages = [
        {"role": "user", "content": "task"},
        {"role": "user", "content": with_pictures("first", [image, image])},
        {"role": "assistant", "content": "ok"},
    ]
    drop_images(messages)
    assert messages[1]["content"] == "first\n[2 image(s) shown with this message earlier were removed to save context.]"
    assert messages[0]["content"] == "task"


@pytest.mark.parametrize(
    ("message", "refs"),
    [
        ("What does the chart in cell 4 show?", [("count", 4)]),
        ("compare cell [2] and cell #5", [("index", 2), ("count", 5)]),
        ("cells 3 and 5", [("count", 3), ("count", 5)]),
        ("Cells 2-4 are slow", [("count", 2), ("count", 3), ("count", 4)]),
        ("cells [1], [2] or [3]", [("index", 1), ("index", 2), ("index", 3)]),
        ("look at Out[7] and In [8]", [("count", 7), ("count", 8)]),
        ("Fix the error in cell [1].", [("index", 1)]),
        ("plot revenue for 2024 in 4 colours", []),
        ("the cellar has 4 rooms", []),
    ],
)
def test_the_cells_a_message_names(message, refs):
    assert referenced_cells(message) == refs


def figure(count: int | None) -> NotebookCell:
    data = {"image/png": encoded(Image.new("RGB", (8, 8))), "text/plain": "<Figure>"}
    return NotebookCell(cell_type="code", execution_count=count, outputs=[{"output_type": "display_data", "data": data}])


def test_which_cells_images_go_with_the_message():
    plain = NotebookCell(cell_type="code", source="x = 1", execution_count=2)
    cells = [figure(1), plain, figure(9), figure(None), NotebookCell(cell_type="markdown", source="# notes")]
    # the active and selected cells' images always
    assert notebook_cells_to_show("hello", cells, 2, [0, 2]) == [2, 0]
    # "cell 9" is the cell that ran as [9]; "cell 3": none ran as 3, so the cell at index 3
    assert notebook_cells_to_show("what does cell 9 show?", cells, 1, []) == [2]
    assert notebook_cells_to_show("and cell 3?", cells, 1, []) == [3]
    # "cell [1]" is the index the model's notebook view (and the panel's quick actions) use; "cell 1" ran as 1
    assert notebook_cells_to_show("Explain cell [2].", cells, 1, []) == [2]
    assert notebook_cells_to_show("Explain cell [0] and cell 9", cells, 1, []) == [0, 2]
    # a chart asked about without a cell: the nearest one with images above the active cell
    assert notebook_cells_to_show("is this plot right?", cells, 4, []) == [3]
    assert notebook_cells_to_show("is this plot right?", cells, 1, []) == [0]
    # nothing asked about images, nothing active with images
    assert notebook_cells_to_show("what is x?", cells, 1, []) == []
    assert notebook_cells_to_show("cell 40", cells, None, []) == []
