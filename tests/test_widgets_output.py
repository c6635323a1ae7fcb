"""The one way the course's widgets show an image: `views.widgets.output` sets the Output's state."""

import base64

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("ipywidgets")

import ipywidgets as W  # noqa: E402

from lora_lab.views.widgets import output  # noqa: E402


def test_show_image_replaces_what_the_output_shows():
    out = W.Output()
    output.show_image(out, b"first", "image/jpeg", "one")
    output.show_image(out, b"second", "image/png", "two")
    (item,) = out.outputs
    assert item == {"output_type": "display_data", "metadata": {},
                    "data": {"image/png": base64.b64encode(b"second").decode("ascii"), "text/plain": "two"}}


def test_show_figure_draws_a_png_and_closes_the_figure():
    out, fig = W.Output(), plt.figure(figsize=(2, 1))
    output.show_figure(out, fig, "a figure")
    (item,) = out.outputs
    assert base64.b64decode(item["data"]["image/png"]).startswith(b"\x89PNG")
    assert not plt.fignum_exists(fig.number)


def test_no_course_widget_module_captures_into_an_output():
    """`with out:` / `out.capture` / `clear_output` in a widget callback is what output.py forbids."""
    from pathlib import Path

    folder = Path(output.__file__).parent
    for path in sorted(folder.glob("*.py")):
        if path.name == "output.py":
            continue
        text = path.read_text()
        for pattern in ("with out", "with plot", ".capture(", "clear_output", "display("):
            assert pattern not in text, f"{path.name} uses {pattern!r}: use output.show_image/show_figure"
