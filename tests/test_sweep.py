"""Reading a learning-rate sweep: the lowest point, refined in log(lr); edges and diverged runs."""

import numpy as np
import pytest

from lora_lab.maths.sweep import at_edge, best_lr, geometric_spread, spread

LRS = [1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2]


def test_a_parabola_in_log_lr_gives_its_vertex_back():
    true = 3e-3
    losses = [(np.log(lr) - np.log(true)) ** 2 for lr in LRS]
    assert np.isclose(best_lr(LRS, losses), true)


def test_symmetric_neighbours_give_the_grid_point():
    assert np.isclose(best_lr(LRS, [5, 3, 1, 3, 5]), 4e-3)


def test_the_edge_is_returned_when_the_lowest_loss_is_at_an_edge():
    best = best_lr(LRS, [1, 2, 3, 4, 5])
    assert best == 1e-3 and at_edge(LRS, best)
    assert not at_edge(LRS, 4e-3)


def test_a_diverged_run_counts_as_the_worst():
    assert np.isclose(best_lr(LRS, [3, 2, 1, 2, np.nan]), 4e-3)
    assert best_lr(LRS, [np.nan, 0.5, np.inf, 1, 2]) == 2e-3  # no parabola through a NaN neighbour


def test_spreads():
    assert spread([1, 2, 3]) == {"mean": 2.0, "low": 1.0, "high": 3.0, "n": 3}
    assert np.isclose(geometric_spread([1, 4])["mean"], 2.0)


@pytest.mark.parametrize(("lrs", "losses", "match"), [
    ([1e-3], [1.0], "same length >= 2"), ([1e-3, 2e-3], [1.0], "same length"),
    ([2e-3, 1e-3], [1, 2], "positive and increasing"), ([0, 1e-3], [1, 2], "positive and increasing")])
def test_bad_sweeps_raise(lrs, losses, match):
    with pytest.raises(ValueError, match=match):
        best_lr(lrs, losses)


def test_bad_spreads_raise():
    with pytest.raises(ValueError, match="at least one number"):
        spread([])
    with pytest.raises(ValueError, match="positive numbers"):
        geometric_spread([1, -1])
