"""Rank sliders for notebook 02: a photograph at rank r, and a planted low-rank-plus-noise matrix.

Each slider calls a pure function from `lora_lab.maths.lowrank`, writes a text readout (an HTML widget)
and puts an image into an `Output`, so a browser test can see both change.
"""

from __future__ import annotations

import io

import ipywidgets as W
import numpy as np

from lora_lab.maths.lowrank import LowRankImage, Reconstruction, load_photo, planted_errors, planted_low_rank
from lora_lab.views.widgets.output import fig_png, show_image


def photo_readout(view: Reconstruction) -> str:
    """The text a photo slider shows for one rank."""
    return (f"rank {view.r} · relative error {view.relative_error:.3f} · "
            f"compression {view.compression:.1f}×")


def planted_readout(S: np.ndarray, r: int, rel_error: float, rel_to_signal: float) -> str:
    """The text the planted-matrix slider shows."""
    gap = S[r - 1] / S[r] if r < S.size and S[r] > 0 else float("inf")
    return (f"rank {r} · relative error {rel_error:.3f} · distance to the hidden signal "
            f"{rel_to_signal:.3f} · gap σ_{r}/σ_{r + 1} = {gap:.3g}")


def _gray_jpeg(image: np.ndarray) -> bytes:
    """An 8-bit grayscale JPEG: less than half the bytes of a PNG of this photograph."""
    from PIL import Image  # Pillow comes with matplotlib

    buf = io.BytesIO()
    pixels = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)  # (h, w) 8-bit gray
    Image.fromarray(pixels).save(buf, format="jpeg", quality=90)
    return buf.getvalue()


def photo_rank_slider(photo=None, r: int = 20, max_rank: int = 200) -> W.VBox:
    """A slider over r that shows a photograph's best rank-r reconstruction and its numbers.

    `photo`: a gray image (h, w), a `LowRankImage` whose SVD is already computed, or None for
    Grace Hopper's portrait.
    """
    if isinstance(photo, LowRankImage):
        demo = photo
    else:
        demo = LowRankImage(load_photo() if photo is None else photo)
    slider = W.IntSlider(value=r, min=1, max=min(max_rank, *demo.shape), description="rank r",
                         continuous_update=False)
    readout, out = W.HTML(), W.Output()

    def update(change=None) -> None:
        view = demo.at_rank(slider.value)
        readout.value = photo_readout(view)
        show_image(out, _gray_jpeg(view.image), "image/jpeg", f"rank-{view.r} reconstruction")

    slider.observe(update, names="value")
    update()
    box = W.VBox([slider, readout, out])
    box.add_class("lora-lab-photo-rank")
    return box


def _spectrum_png(S: np.ndarray, r: int) -> bytes:
    from lora_lab.views.plots.lowrank import plot_spectrum

    fig, _ = plot_spectrum(S, r=r, title="spectrum of the noisy matrix")
    fig.set_size_inches(5, 3)
    return fig_png(fig)


def planted_rank_slider(m: int = 64, n: int = 48, rank: int = 4, seed: int = 0) -> W.VBox:
    """Sliders over r and the noise level of a planted rank-`rank` matrix: spectrum and errors."""
    r_slider = W.IntSlider(value=rank, min=1, max=min(m, n), description="rank r", continuous_update=False)
    noise = W.FloatLogSlider(value=0.1, base=10, min=-3, max=1, step=0.25, description="noise",
                             continuous_update=False)
    readout, out = W.HTML(), W.Output()

    def update(change=None) -> None:
        M, signal = planted_low_rank(m, n, rank, noise=noise.value, seed=seed)
        S, rel, rel_signal = planted_errors(M, signal, r_slider.value)
        readout.value = planted_readout(S, r_slider.value, rel, rel_signal)
        show_image(out, _spectrum_png(S, r_slider.value), "image/png", "singular values")

    r_slider.observe(update, names="value")
    noise.observe(update, names="value")
    update()
    box = W.VBox([r_slider, noise, readout, out])
    box.add_class("lora-lab-planted-rank")
    return box
