"""The budget calculator: model, r and target matrices -> trainable parameters, share, adapter
size and training-memory bars. A thin wrapper over `lora_lab.maths.budget.budget_summary`."""

from __future__ import annotations

import ipywidgets as widgets

from lora_lab.maths import budget
from lora_lab.views.plots.budget import plot_training_memory
from lora_lab.views.widgets.output import show_figure


def budget_readout(summary: dict) -> str:
    """The calculator's text, as HTML, from a `budget_summary` dict."""
    full, lora = summary["full"], summary["lora"]
    names = ", ".join("W" + t for t in summary["targets"])
    return (f"<b>{summary['model']}</b>, LoRA r={summary['r']} on {names}<br>"
            f"trainable parameters: <b>{summary['trainable']:,}</b> "
            f"({summary['percent']:.4f}% of {budget.format_count(summary['total'])})<br>"
            f"adapter file (fp16): <b>{budget.format_bytes(summary['adapter_bytes'])}</b><br>"
            f"training memory: full {budget.format_bytes(full.total)} → LoRA "
            f"{budget.format_bytes(lora.total)} ({full.total / lora.total:.1f}× less)")


def _target_boxes() -> dict[str, widgets.Checkbox]:
    return {t: widgets.Checkbox(value=t in ("q", "v"), description="W" + t, indent=False,
                                layout=widgets.Layout(width="70px")) for t in budget.TARGETS}


def budget_widget(model: str = "GPT-3 175B", r: int = 4, precision: str = "fp16") -> widgets.VBox:
    """A VBox (CSS class `lora-lab-budget`): a model menu, an r slider, target checkboxes,
    an HTML readout and the memory bars in an Output. `box.controls` holds the controls."""
    menu = widgets.Dropdown(options=list(budget.PRESETS), value=model, description="model")
    slider = widgets.IntSlider(value=r, min=1, max=128, description="rank r", continuous_update=True)
    checks = _target_boxes()
    readout = widgets.HTML().add_class("lora-lab-budget-readout")
    plot = widgets.Output().add_class("lora-lab-budget-plot")

    def update(change=None):
        shape = budget.PRESETS[menu.value]
        checks["gate"].disabled = not shape.gated_mlp
        targets = tuple(t for t, c in checks.items() if c.value and not c.disabled)
        if not targets:
            readout.value = "choose at least one matrix to adapt"
            return
        summary = budget.budget_summary(shape, slider.value, targets, precision)
        readout.value = budget_readout(summary)
        title = f"{shape.name} ({precision}, Adam)"
        fig, _ = plot_training_memory(summary["full"], summary["lora"], title)
        show_figure(plot, fig, f"training memory: {title}")

    for control in (menu, slider, *checks.values()):
        control.observe(update, names="value")
    box = widgets.VBox([menu, slider, widgets.HBox(list(checks.values())), readout, plot])
    box.add_class("lora-lab-budget")
    box.controls = {"model": menu, "r": slider, "targets": checks, "readout": readout, "plot": plot}
    update()
    return box
