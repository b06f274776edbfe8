"""Goodness of fit of a synergy reconstruction.

Two measures are in use in the field and they differ a lot, so both are reported and labelled:

* uncentered VAF (variance accounted for), ``1 - SSE / sum(X**2)``: the usual synergy criterion
  (Torres-Oviedo et al. 2006; Cheung et al. 2005);
* centered R^2, ``1 - SSE / sum((X - mean(X))**2)`` with the grand mean of X, as computed by
  musclesyneRgies (Santuz et al. 2017).
"""

from __future__ import annotations

import numpy as np


def sse(emg: np.ndarray, reconstruction: np.ndarray) -> float:
    """Sum of squared errors between ``emg`` and ``reconstruction`` (same shape)."""
    residual = np.asarray(emg, dtype=float) - np.asarray(reconstruction, dtype=float)
    return float(np.sum(residual * residual))


def vaf(emg: np.ndarray, reconstruction: np.ndarray) -> float:
    """Uncentered variance accounted for, ``1 - SSE / sum(emg**2)`` (a fraction, not %).

    Parameters
    ----------
    emg, reconstruction
        Arrays of the same shape, (n_times, n_muscles).
    """
    emg = np.asarray(emg, dtype=float)
    total = float(np.sum(emg * emg))
    return 1.0 - sse(emg, reconstruction) / total if total > 0 else float("nan")


def r2(emg: np.ndarray, reconstruction: np.ndarray) -> float:
    """Centered R^2, ``1 - SSE / sum((emg - grand mean)**2)`` (musclesyneRgies's definition)."""
    emg = np.asarray(emg, dtype=float)
    centered = emg - emg.mean()
    total = float(np.sum(centered * centered))
    return 1.0 - sse(emg, reconstruction) / total if total > 0 else float("nan")
