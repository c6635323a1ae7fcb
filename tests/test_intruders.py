"""Intruder dimensions: a planted new direction is found, W0's own directions are not, and scaling
an intruder down changes only its singular value."""

import numpy as np
import pytest

from lora_lab.maths.intruders import best_match, count_intruders, intruders, scale_intruders


def _planted(seed=0, d_out=12, d_in=10, strength=50.0):
    """W0 with a decaying spectrum; W = W0 + a strong rank-1 update along a direction of W0's tail."""
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.normal(size=(d_out, d_out)))
    V, _ = np.linalg.qr(rng.normal(size=(d_in, d_in)))
    S = np.linspace(10, 1, d_in)
    W0 = (U[:, :d_in] * S) @ V.T
    u = U[:, d_in:].sum(axis=1) / np.sqrt(d_out - d_in)  # orthogonal to every left vector of W0
    v = rng.normal(size=d_in)
    return W0, W0 + strength * np.outer(u, v / np.linalg.norm(v))


def test_an_unchanged_matrix_has_no_intruders():
    W0, _ = _planted()
    assert np.allclose(best_match(W0, W0), 1.0)
    assert len(intruders(W0, W0)) == 0


def test_a_strong_new_direction_is_the_top_intruder():
    W0, W = _planted()
    found = intruders(W0, W, k=3, threshold=0.5)
    assert found.tolist() == [0]
    assert best_match(W0, W)[0] < 0.1


def test_count_sums_over_matrices_and_threshold_one_counts_all_but_exact_matches():
    W0, W = _planted()
    assert count_intruders([(W0, W), (W0, W), (W0, W0)], k=3) == 2
    assert count_intruders([(W0, W)], k=10, threshold=1.0) >= 1


def test_scaling_changes_only_the_intruders_singular_value():
    W0, W = _planted()
    s_before = np.linalg.svd(W, compute_uv=False)
    W_half = scale_intruders(W0, W, 0.5, k=3)
    s_after = np.linalg.svd(W_half, compute_uv=False)
    assert np.isclose(np.sort(s_after)[::-1][0], max(0.5 * s_before[0], s_before[1]))
    assert np.allclose(scale_intruders(W0, W, 1.0), W)
    assert np.allclose(scale_intruders(W0, W0, 0.0), W0)  # nothing to scale


def test_removing_the_intruder_brings_back_w0_directions():
    W0, W = _planted()
    assert len(intruders(W0, scale_intruders(W0, W, 0.0, k=3), k=3)) == 0


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"k": 0}, "k must be an integer"), ({"threshold": 0.0}, "threshold must be a cosine"),
    ({"threshold": 1.5}, "threshold must be a cosine")])
def test_bad_arguments_raise(kwargs, match):
    W0, W = _planted()
    with pytest.raises(ValueError, match=match):
        intruders(W0, W, **kwargs)


def test_bad_shapes_and_lambda_raise():
    W0, W = _planted()
    with pytest.raises(ValueError, match="W must have the shape of W0"):
        best_match(W0, W[:, :5])
    with pytest.raises(ValueError, match="lam must be a number in"):
        scale_intruders(W0, W, 1.5)
