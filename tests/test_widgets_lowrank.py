"""The rank sliders: CSS classes for the browser test, and a readout and an image that follow r."""

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from lora_lab.maths import lowrank as lr  # noqa: E402
from lora_lab.views.widgets.lowrank import photo_rank_slider, photo_readout, planted_rank_slider  # noqa: E402


def _image_payload(out):
    (item,) = out.outputs
    return next(v for k, v in item["data"].items() if k.startswith("image/"))


def test_photo_slider_updates_readout_and_image():
    photo = np.random.default_rng(0).uniform(size=(40, 30))
    box = photo_rank_slider(photo, r=3)
    slider, readout, out = box.children
    assert "lora-lab-photo-rank" in box._dom_classes
    assert readout.value == photo_readout(lr.LowRankImage(photo).at_rank(3))
    before, image_before = readout.value, _image_payload(out)
    slider.value = 12
    assert readout.value.startswith("rank 12 · relative error")
    assert readout.value != before and _image_payload(out) != image_before


def test_photo_slider_max_is_capped_by_the_matrix():
    box = photo_rank_slider(np.ones((10, 6)), r=2, max_rank=200)
    assert box.children[0].max == 6


def test_planted_slider_updates_with_rank_and_noise():
    box = planted_rank_slider(m=20, n=16, rank=3)
    r_slider, noise, readout, out = box.children
    assert "lora-lab-planted-rank" in box._dom_classes
    first = readout.value
    assert first.startswith("rank 3 · relative error")
    r_slider.value = 5
    second = readout.value
    assert second.startswith("rank 5") and second != first
    noise.value = 1.0
    assert readout.value != second and _image_payload(out)


def test_photo_slider_reuses_a_computed_svd():
    demo = lr.LowRankImage(np.random.default_rng(1).uniform(size=(12, 9)))
    box = photo_rank_slider(demo, r=2)
    assert box.children[1].value == photo_readout(demo.at_rank(2))
