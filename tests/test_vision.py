"""Vision models see the figures: a real server, real kernels drawing with matplotlib, and litellm sending
the images to the scripted model server, whose request log shows exactly what the model was given.

``gpt-4o`` behind the scripted server's ``api_base`` is sent as ``openai/gpt-4o``, which litellm knows
accepts images; ``scripted`` is a model litellm does not know, so it gets text only.
"""

from __future__ import annotations

import base64
import io

import pytest
from fake_llm import prompt_tokens
from PIL import Image

pytestmark = pytest.mark.timeout(180)

# a 1200 x 800 px chart (figure dpi 100): larger than the configured side
PLOT = """<code>
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(12, 8), dpi=100)
ax.plot([1, 2, 3], [{n}, 1, 9], label="sales")
ax.legend()
plt.show()
</code>"""
SEES = "## You see the figures"
TODAY = "It displayed 1 image(s), which the user can see."


@pytest.fixture
def dsagent_config(request, agent_config):
    return {**agent_config, "default_model": "gpt-4o", "vision_max_side": 512, **getattr(request, "param", {})}


def images_in(message: dict) -> list[Image.Image]:
    """The images of a request message, decoded from their data URLs."""
    content = message["content"]
    if not isinstance(content, list):
        return []
    urls = [part["image_url"]["url"] for part in content if part["type"] == "image_url"]
    assert all(url.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")) for url in urls), urls
    return [Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) for url in urls]


def text_of(message: dict) -> str:
    content = message["content"]
    return content if isinstance(content, str) else "\n".join(p["text"] for p in content if p["type"] == "text")


def rounds(events: list[dict]) -> list[dict]:
    return [e["data"] for e in events if e["event"] == "round_complete"]


async def test_the_model_sees_the_chart_its_cell_drew(client, fake_llm):
    sid = await client.session()
    fake_llm.script(PLOT.format(n=4), "<answer>The line dips, then rises.</answer>")
    events = await client.chat_stream(sid, "plot the sales")
    first, second = fake_llm.requests
    assert images_in(first["messages"][-1]) == [] and SEES in first["messages"][0]["content"]
    feedback = second["messages"][-1]
    [image] = images_in(feedback)
    assert max(image.size) == 512 and image.size[0] > image.size[1]  # downscaled, the shape kept
    [drawn] = [e["data"]["images"][0] for e in events if e["event"] == "code_result"]
    raw = Image.open(io.BytesIO(base64.b64decode(drawn["data"])))
    assert max(raw.size) > 512  # what the user sees is the full-size figure
    assert text_of(feedback).startswith("The code ran successfully.")
    assert "It displayed 1 image(s); they follow this message (downscaled)." in text_of(feedback)
    assert TODAY not in text_of(feedback)
    assert [r["images_seen"] for r in rounds(events)] == [0, 1]
    # usage is what the server reported for each request, image tokens included, and spending follows it
    usage = events[-1]["data"]["usage"]
    assert usage["prompt_tokens"] == sum(prompt_tokens(r["messages"]) for r in fake_llm.requests)
    without_image = [*second["messages"][:-1], {"role": "user", "content": text_of(feedback)}]
    assert prompt_tokens(second["messages"]) - prompt_tokens(without_image) >= 85
    policy = (await client.call("GET", "/api/policy", params={"session_id": sid})).json()
    assert policy["session_spent"]["cost_usd"] == pytest.approx(usage["cost_usd"]) and usage["cost_usd"] > 0
    turns = (await client.call("GET", f"/api/sessions/{sid}/turns")).json()["turns"]
    assert [t["images_seen"] for t in turns] == [0, 1]  # the panel shows it after a reload too


@pytest.mark.parametrize(
    "dsagent_config",
    [{"default_model": "scripted"}, {"vision": "off"}],
    indirect=True,
    ids=["model-without-vision", "vision-off"],
)
async def test_no_image_without_vision(client, fake_llm):
    sid = await client.session()
    fake_llm.script(PLOT.format(n=4), "<answer>done</answer>")
    events = await client.chat_stream(sid, "plot the sales")
    feedback = fake_llm.requests[1]["messages"][-1]
    assert isinstance(feedback["content"], str)  # exactly today's text
    assert feedback["content"] == (
        "The code ran successfully.\nIt printed nothing.\n" + TODAY
        + "\nContinue with the next step, or give the <answer> if the task is complete."
    )
    assert all(SEES not in r["messages"][0]["content"] for r in fake_llm.requests)
    assert [r["images_seen"] for r in rounds(events)] == [0, 0]


@pytest.mark.parametrize(
    "dsagent_config",
    [{"default_model": "scripted", "vision": "on"}, {"model_workers": 0}],
    indirect=True,
    ids=["on-for-a-model-litellm-does-not-know", "auto-with-model-calls-in-the-server"],
)
async def test_images_by_setting_and_in_process(client, fake_llm):
    sid = await client.session()
    fake_llm.script(PLOT.format(n=4), "<answer>done</answer>")
    await client.chat_stream(sid, "plot the sales")
    assert len(images_in(fake_llm.requests[1]["messages"][-1])) == 1
    assert SEES in fake_llm.requests[0]["messages"][0]["content"]


async def test_only_the_latest_rounds_images_stay(client, fake_llm):
    sid = await client.session()
    fake_llm.script(PLOT.format(n=4), PLOT.format(n=5), PLOT.format(n=6), "<answer>done</answer>")
    events = await client.chat_stream(sid, "three charts")
    last = fake_llm.requests[3]["messages"]
    assert [len(images_in(m)) for m in last] == [0] * (len(last) - 1) + [1]
    earlier = [m for m in last if m["role"] == "user"][1:-1]
    assert len(earlier) == 2 and all(
        text_of(m).endswith("[1 image(s) shown with this message earlier were removed to save context.]") for m in earlier
    )
    assert [r["images_seen"] for r in rounds(events)] == [0, 1, 1, 1]


MANY = """<code>
import matplotlib.pyplot as plt
from IPython.display import SVG, display
display(SVG('<svg xmlns="http://www.w3.org/2000/svg" width="300" height="200"><rect width="300" height="200" fill="red"/></svg>'))
for n in range(5):
    plt.figure(figsize=(3, 2)); plt.plot([0, n]); plt.show()
</code>"""


@pytest.mark.parametrize("dsagent_config", [{"vision_max_images": 3}], indirect=True)
async def test_at_most_max_images_and_svg_is_rasterised(client, fake_llm):
    sid = await client.session()
    fake_llm.script(MANY, "<answer>done</answer>")
    await client.chat_stream(sid, "many")
    feedback = fake_llm.requests[1]["messages"][-1]
    images = images_in(feedback)
    assert len(images) == 3 and "It displayed 6 image(s); the first 3 follow this message" in text_of(feedback)
    svg = images[0].convert("RGB")
    assert svg.size == (300, 200) and near(svg.getpixel((150, 100)), (255, 0, 0))  # the SVG, rasterised


def near(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    """The colour, within what JPEG's compression changes."""
    return all(abs(a - b) <= 8 for a, b in zip(pixel, colour))


def png(width: int, height: int, colour: str = "blue") -> str:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def figure_cell(source: str, count: int | None, data: str) -> dict:
    output = {"output_type": "display_data", "data": {"image/png": data, "text/plain": "<Figure>"}, "metadata": {}}
    return {"cell_type": "code", "source": source, "execution_count": count, "outputs": [output]}


async def test_the_users_notebook_images(client, fake_llm):
    sid = await client.session()
    cells = [
        {"cell_type": "markdown", "source": "# Sales"},
        figure_cell("sales.plot()", 4, png(2000, 1000, "green")),
        figure_cell("costs.plot()", 7, png(300, 300, "red")),
        {"cell_type": "code", "source": "x = 1", "execution_count": 8, "outputs": []},
    ]
    # the active cell's images come with the first request, always
    fake_llm.script("<answer>A green square.</answer>")
    body = {"message": "What is wrong here?", "notebook_context": {"cells": cells, "active_cell_index": 2}}
    r = await client.call("POST", f"/api/sessions/{sid}/chat", json=body)
    assert r.status_code == 200, r.text
    task = fake_llm.requests[-1]["messages"][-1]
    [image] = images_in(task)
    assert near(image.convert("RGB").getpixel((10, 10)), (255, 0, 0))
    assert text_of(task) == "What is wrong here?\n\n[The images in the outputs of notebook cell(s) [2] follow this message (downscaled).]"
    assert r.json()["rounds"][0]["images_seen"] == 1
    # a cell the message names: "cell 4" is the cell JupyterLab labels [4]
    fake_llm.script("<answer>ok</answer>")
    body = {"message": "What does the chart in cell 4 show?", "notebook_context": {"cells": cells, "active_cell_index": 3}}
    await client.call("POST", f"/api/sessions/{sid}/chat", json=body)
    [image] = images_in(fake_llm.requests[-1]["messages"][-1])
    assert image.size == (512, 256) and near(image.convert("RGB").getpixel((10, 10)), (0, 128, 0))
    # a chart asked about without naming a cell: the nearest one above the active cell
    fake_llm.script("<answer>ok</answer>")
    body = {"message": "Is this plot right?", "notebook_context": {"cells": cells, "active_cell_index": 3}}
    await client.call("POST", f"/api/sessions/{sid}/chat", json=body)
    assert "notebook cell(s) [2] follow" in text_of(fake_llm.requests[-1]["messages"][-1])
    # nothing named, nothing active with images, no chart asked about: text only, as before
    fake_llm.script("<answer>ok</answer>")
    body = {"message": "What is x?", "notebook_context": {"cells": cells, "active_cell_index": 3}}
    await client.call("POST", f"/api/sessions/{sid}/chat", json=body)
    assert fake_llm.requests[-1]["messages"][-1]["content"] == "What is x?"


async def test_an_attached_notebooks_images(client, fake_llm, jp_root_dir):
    """The notebook on disk (no client context: no active cell, so the cells the message names), and the
    panel's live context of the same notebook, whose active cell's images always go."""
    import nbformat

    chart = nbformat.v4.new_code_cell("sales.plot()", execution_count=3)
    chart.outputs = [nbformat.v4.new_output("display_data", data={"image/png": png(900, 600, "green"), "text/plain": "<Figure>"})]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Sales"), chart])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, jp_root_dir / "sales.ipynb")
    r = await client.call("POST", "/api/sessions", json={"notebook_path": "sales.ipynb"})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    fake_llm.script("<answer>A rising line.</answer>")
    events = await client.chat_stream(sid, "What does the chart in cell 3 show?")
    [image] = images_in(fake_llm.requests[-1]["messages"][-1])
    assert max(image.size) == 512 and rounds(events)[0]["images_seen"] == 1
    live = {"cells": [{"cell_type": "markdown", "source": "# Sales"}, nb.cells[1]], "active_cell_index": 1}
    fake_llm.script("<answer>ok</answer>")
    body = {"message": "Explain this.", "notebook_context": live}
    r = await client.call("POST", f"/api/sessions/{sid}/chat", json=body)
    assert r.status_code == 200, r.text
    assert len(images_in(fake_llm.requests[-1]["messages"][-1])) == 1
