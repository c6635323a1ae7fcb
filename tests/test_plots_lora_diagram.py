"""Figure 1 drawn by code: it draws, and the shapes written on it come from its arguments."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from lora_lab.views.plots.lora_diagram import plot_lora_diagram  # noqa: E402


def _texts(ax) -> str:
    return " | ".join(t.get_text() for t in ax.texts)


def test_diagram_writes_the_shapes_it_is_given():
    fig, ax = plot_lora_diagram(d_in=576, d_out=192, r=8, alpha=16)
    text = _texts(ax)
    for label in ("192 × 576", "(8 × 576)", "(192 × 8)", "B = 0 at the start", "frozen", "trained",
                  "α/r = 16/8 = 2", "d_in = 576", "d_out = 192"):
        assert label in text, f"{label!r} missing from {text!r}"
    assert "1,024" not in text  # nothing left over from the defaults
    assert len(ax.patches) >= 3  # W0, A, B (and the arrows)
    plt.close(fig)


def test_defaults_are_the_notes_example():
    fig, ax = plot_lora_diagram()
    assert "(4 × 1,024)" in _texts(ax) and "(1,024 × 4)" in _texts(ax)
    plt.close(fig)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"r": 0}, ValueError, r"r must be an integer in \[1, min\(d_in, d_out\)\]=\[1, 1024\], got 0"),
    ({"d_in": 8, "r": 9}, ValueError, r"=\[1, 8\], got 9"),
    ({"d_out": 0}, ValueError, r"d_out must be an integer in \[1, inf\], got 0"),
    ({"d_in": 2.5}, TypeError, "d_in must be an integer"),
    ({"alpha": 0}, ValueError, "alpha must be a positive"),
])
def test_bad_arguments_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        plot_lora_diagram(**kwargs)
