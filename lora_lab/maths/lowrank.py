"""Rank, the SVD and the best rank-r approximation, in NumPy.

Shapes follow NumPy's thin SVD: M (m, n) = U (m, k) · diag(S) (k,) · Vt (k, n), k = min(m, n),
singular values S sorted largest first. The best rank-r approximation keeps the top r of them
(Eckart–Young), and its factors are LoRA's: B = U_r·diag(S_r) (m, r), A = Vt_r (r, n).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from lora_lab._checks import as_matrix, check_int, check_rank


def _rank_arg(M: np.ndarray, r) -> int:
    m, n = M.shape
    return check_rank(r, d_in=n, d_out=m)


def truncated_svd(M, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top-r singular triplets. Shapes: M (m, n) -> U (m, r), S (r,), Vt (r, n)."""
    M = as_matrix("M", M)
    r = _rank_arg(M, r)
    U, S, Vt = np.linalg.svd(M, full_matrices=False)
    return U[:, :r], S[:r], Vt[:r]


def low_rank_approx(M, r: int) -> np.ndarray:
    """The best rank-r approximation U_r diag(S_r) Vt_r. Shapes: M (m, n) -> (m, n)."""
    U, S, Vt = truncated_svd(M, r)
    return (U * S) @ Vt  # U * S scales column i of U by S[i]: (m, r)


def approx_error(M, r: int) -> float:
    """‖M − M_r‖_F, measured on the difference (Eckart–Young: it equals √(Σ_{i>r} σ_i²))."""
    M = as_matrix("M", M)
    return float(np.linalg.norm(M - low_rank_approx(M, r)))


def _check_spectrum(S) -> np.ndarray:
    if hasattr(S, "detach"):  # a torch tensor
        S = S.detach().cpu().double().numpy()
    S = np.asarray(S, dtype=np.float64)
    if S.ndim != 1 or S.size == 0:
        raise ValueError(f"S must be a non-empty 1-D array of singular values, got shape {S.shape}")
    if not np.isfinite(S).all() or (S < 0).any():
        raise ValueError(f"S must hold finite, non-negative singular values, got {S}")
    if (np.diff(S) > 1e-12 * S[0]).any():
        raise ValueError("S must be sorted largest first, as np.linalg.svd returns it")
    if S[0] == 0:
        raise ValueError("S must have a positive singular value (the zero matrix has no energy)")
    return S


def energy(S) -> np.ndarray:
    """Cumulative share of Σσ² kept by the top 1, 2, … singular values. Shapes: (k,) -> (k,)."""
    S = _check_spectrum(S)
    kept = np.cumsum(S**2)
    return kept / kept[-1]


def rank_for_energy(S, keep: float = 0.9) -> int:
    """The smallest r whose top-r singular values keep at least `keep` of Σσ²."""
    if isinstance(keep, bool) or not isinstance(keep, numbers.Real) or not 0 < keep <= 1:
        raise ValueError(f"keep must be a number in (0, 1], got {keep!r}")
    shares = energy(S)
    return int(np.searchsorted(shares, keep - 1e-12) + 1)  # tolerance: 1.0 - rounding still counts


def numerical_rank(M, tol: float | None = None) -> int:
    """How many singular values exceed `tol` (default: σ_max · max(m, n) · machine epsilon)."""
    M = as_matrix("M", M)
    S = np.linalg.svd(M, compute_uv=False)
    if tol is None:
        tol = S[0] * max(M.shape) * np.finfo(np.float64).eps  # NumPy's matrix_rank default
    elif isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not np.isfinite(tol) or tol < 0:
        raise ValueError(f"tol must be a finite number >= 0 or None, got {tol!r}")
    return int((S > tol).sum())


def factor_params(m: int, n: int, r: int) -> int:
    """Entries of rank-r factors B (m, r) and A (r, n): r·(m + n)."""
    m, n = check_int("m", m, low=1), check_int("n", n, low=1)
    return check_rank(r, d_in=n, d_out=m) * (m + n)


def compression_ratio(m: int, n: int, r: int) -> float:
    """How many times fewer numbers rank-r factors store than the full matrix: m·n / (r·(m + n))."""
    return m * n / factor_params(m, n, r)


def with_singular_values(S, m: int, n: int, seed: int = 0) -> np.ndarray:
    """A random (m, n) matrix whose singular values are exactly S (padded with zeros)."""
    m, n = check_int("m", m, low=1), check_int("n", n, low=1)
    S = np.asarray(S, dtype=np.float64)
    if S.ndim != 1 or not 1 <= S.size <= min(m, n) or not np.isfinite(S).all() or (S < 0).any():
        raise ValueError(f"S must be 1-D, non-negative, with 1 to min(m, n)={min(m, n)} values, got {S}")
    rng = np.random.default_rng(check_int("seed", seed, low=0))
    U, _ = np.linalg.qr(rng.standard_normal((m, S.size)))  # orthonormal columns: (m, k)
    V, _ = np.linalg.qr(rng.standard_normal((n, S.size)))  # (n, k)
    return (U * S) @ V.T  # (m, n)


def planted_low_rank(m: int, n: int, rank: int, noise: float = 0.1,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A hidden rank-`rank` update plus Gaussian noise: returns (noisy M, clean signal), both (m, n).

    The signal B @ A / √rank has entries of variance 1, so `noise` is the noise-to-signal ratio
    per entry (the standard deviation of the added noise).
    """
    m, n = check_int("m", m, low=1), check_int("n", n, low=1)
    rank = check_rank(rank, d_in=n, d_out=m, name="rank")
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    rng = np.random.default_rng(check_int("seed", seed, low=0))
    B, A = rng.standard_normal((m, rank)), rng.standard_normal((rank, n))
    signal = B @ A / np.sqrt(rank)
    return signal + noise * rng.standard_normal((m, n)), signal


@dataclass(frozen=True)
class Reconstruction:
    """One rank's view of a matrix: the rank-r image, ‖M − M_r‖_F / ‖M‖_F, and m·n / (r·(m+n))."""

    r: int
    image: np.ndarray
    relative_error: float
    compression: float


class LowRankImage:
    """The SVD of a matrix computed once; every rank after that costs one (m, r) @ (r, n) product."""

    def __init__(self, M) -> None:
        self.M = as_matrix("M", M)
        U, self.S, self.Vt = np.linalg.svd(self.M, full_matrices=False)
        self.US = U * self.S  # B-like factor U diag(S): (m, k)
        tail = np.cumsum((self.S**2)[::-1])[::-1]  # tail[i] = Σ_{j>=i} σ_j²
        self._tail = np.append(tail, 0.0)[1:]  # _tail[r-1] = Σ_{j>r} σ_j², the rank-r error²
        self._norm = float(np.sqrt(tail[0]))

    @property
    def shape(self) -> tuple[int, int]:
        return self.M.shape

    def reconstruct(self, r: int) -> np.ndarray:
        """The best rank-r approximation. Shapes: -> (m, n)."""
        r = _rank_arg(self.M, r)
        return self.US[:, :r] @ self.Vt[:r]

    def relative_error(self, r: int) -> float:
        """‖M − M_r‖_F / ‖M‖_F from the singular values alone (Eckart–Young)."""
        r = _rank_arg(self.M, r)
        return float(np.sqrt(max(self._tail[r - 1], 0.0))) / self._norm

    def at_rank(self, r: int) -> Reconstruction:
        """Everything a rank slider shows for rank r."""
        m, n = self.shape
        return Reconstruction(r=int(r), image=self.reconstruct(r), relative_error=self.relative_error(r),
                              compression=compression_ratio(m, n, r))


def planted_errors(M, signal, r: int) -> tuple[np.ndarray, float, float]:
    """Singular values of M, ‖M − M_r‖_F/‖M‖_F and ‖M_r − signal‖_F/‖signal‖_F (both (m, n) in)."""
    demo = LowRankImage(M)
    signal = as_matrix("signal", signal)
    if signal.shape != demo.shape:
        raise ValueError(f"signal must have the shape of M {demo.shape}, got {signal.shape}")
    M_r = demo.reconstruct(r)
    return demo.S, demo.relative_error(r), float(np.linalg.norm(M_r - signal) / np.linalg.norm(signal))


def grayscale(rgb) -> np.ndarray:
    """Luma (ITU-R BT.601 weights) of an RGB image, scaled to [0, 1]. Shapes: (h, w, 3) -> (h, w)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] not in (3, 4):
        raise ValueError(f"rgb must have shape (h, w, 3) or (h, w, 4), got {rgb.shape}")
    scale = 255.0 if rgb.dtype == np.uint8 else 1.0
    return (rgb[..., :3].astype(np.float64) / scale) @ np.array([0.299, 0.587, 0.114])  # (h, w)


def load_photo() -> np.ndarray:
    """Grace Hopper's portrait from matplotlib's sample data (no download), gray in [0, 1]: (600, 512)."""
    import matplotlib.cbook as cbook  # matplotlib only to read the file; the maths above is NumPy
    import matplotlib.image as mpimg

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return grayscale(mpimg.imread(f, format="jpg"))
