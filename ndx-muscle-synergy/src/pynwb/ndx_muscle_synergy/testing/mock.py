"""Mock factories for the extension types, in the spirit of ``pynwb.testing.mock``.

Every factory returns a valid object with sensible defaults; any argument can be overridden
(``software`` and ``software_version`` too, so that a package built on the extension can stamp
its own name).

When ``nwbfile`` is given, the object is added to it (MuscleSynergy and SynergyActivation to
``processing["behavior"]``, SpikeTriggeredAverageTable to ``processing["ecephys"]``), and the
objects it needs (Units, a source EMG series) are taken from the file or created in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import __version__
from ..muscle_synergy import MuscleSynergy, SpikeTriggeredAverageTable, SynergyActivation

_MUSCLES = ("FDS", "FDP", "FCR", "FCU", "EDC", "ECR", "ECU", "BR")
#: default ``software`` and ``software_version`` of the mocks (override them as keywords)
_SOFTWARE = {"software": "ndx_muscle_synergy.testing", "software_version": __version__}
_MODULE_DESCRIPTIONS = {
    "behavior": "Processed behavioral data: muscle synergies of the EMG and their activations.",
    "ecephys": "Processed extracellular electrophysiology: spike-triggered averages of EMG.",
}


def _module(nwbfile, name: str):
    if name in nwbfile.processing:
        return nwbfile.processing[name]
    return nwbfile.create_processing_module(name, _MODULE_DESCRIPTIONS[name])


def mock_weights(
    n_muscles: int = 6, n_synergies: int = 3, *, nonnegative: bool = True, seed: int = 0
) -> np.ndarray:
    """Random unit-norm synergy weights, shape (n_muscles, n_synergies), float32.

    With ``nonnegative=False`` one weight per synergy is made negative (a small NegCp).
    """
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.05, 1.0, (n_muscles, n_synergies))
    if not nonnegative:
        rows = rng.integers(0, n_muscles, n_synergies)
        weights[rows, np.arange(n_synergies)] *= -0.3
    weights /= np.linalg.norm(weights, axis=0, keepdims=True)
    return weights.astype(np.float32)


def mock_MuscleSynergy(  # noqa: N802 - named after the type, as pynwb's mocks are
    *,
    name: str = "MuscleSynergyNMF",
    description: str = "Synergies of mock EMG extracted with NMF.",
    n_muscles: int = 6,
    n_synergies: int = 3,
    weights: np.ndarray | None = None,
    muscle_name: Sequence[str] | None = None,
    method: str = "nmf",
    nonnegative: bool = True,
    parameters: dict | str | None = None,
    variance_accounted_for: Sequence[float] | None = None,
    emg_series: Any = None,
    nwbfile: Any = None,
    seed: int = 0,
    **kwargs: Any,
) -> MuscleSynergy:
    """A MuscleSynergy with random unit-norm weights.

    Parameters
    ----------
    n_muscles, n_synergies
        Shape of the weights when ``weights`` is None.
    weights, muscle_name
        Explicit weights (n_muscles, n_synergies) and names; defaults are random weights and
        forearm muscle names.
    emg_series
        A 2-D TimeSeries with one column per muscle to reference (``emg_series`` and
        ``emg_channel`` columns), or None for no references.
    nwbfile
        Add the table to ``nwbfile.processing["behavior"]`` (created when absent).
    **kwargs
        Any other MuscleSynergy argument (offset, electrodes, provenance, ...).
    """
    if weights is None:
        weights = mock_weights(n_muscles, n_synergies, nonnegative=nonnegative, seed=seed)
    weights = np.asarray(weights)
    n_muscles = weights.shape[0]
    if muscle_name is None:
        muscle_name = [
            _MUSCLES[i] if i < len(_MUSCLES) else f"muscle_{i}" for i in range(n_muscles)
        ]
    if parameters is None:
        parameters = {"n_synergies": int(weights.shape[1]), "random_state": seed}
    if variance_accounted_for is None:
        variance_accounted_for = np.linspace(0.5, 0.1, weights.shape[1])
    if emg_series is not None:
        kwargs.setdefault("emg_series", [emg_series] * n_muscles)
        kwargs.setdefault("emg_channel", np.arange(n_muscles))
    for key, value in _SOFTWARE.items():
        kwargs.setdefault(key, value)
    table = MuscleSynergy(
        name=name,
        description=description,
        muscle_name=list(muscle_name),
        weights=weights,
        method=method,
        nonnegative=nonnegative,
        parameters=parameters,
        variance_accounted_for=variance_accounted_for,
        **kwargs,
    )
    if nwbfile is not None:
        _module(nwbfile, "behavior").add(table)
    return table


def mock_SynergyActivation(  # noqa: N802
    *,
    name: str = "SynergyActivationNMF",
    muscle_synergy: MuscleSynergy | None = None,
    data: np.ndarray | None = None,
    n_times: int = 200,
    rate: float = 100.0,
    starting_time: float = 0.0,
    description: str = "Activations of the mock synergies (non-negative).",
    nwbfile: Any = None,
    seed: int = 0,
    **kwargs: Any,
) -> SynergyActivation:
    """A SynergyActivation of half-rectified sine bursts, linked to its MuscleSynergy.

    Parameters
    ----------
    muscle_synergy
        The synergies; a :func:`mock_MuscleSynergy` (added to ``nwbfile`` too) when None.
    data
        Activations (n_times, n_synergies); default: bursts at a different phase per synergy.
    n_times, rate, starting_time
        Length and timing of the default data.
    nwbfile
        Add the series to ``nwbfile.processing["behavior"]``.
    """
    if muscle_synergy is None:
        muscle_synergy = mock_MuscleSynergy(nwbfile=nwbfile, seed=seed)
    k = muscle_synergy.n_synergies
    if data is None:
        t = np.arange(n_times) / rate
        phase = np.linspace(0, np.pi, k, endpoint=False)
        data = np.maximum(np.sin(2 * np.pi * 1.0 * t[:, None] + phase[None, :]), 0.0)
    series = SynergyActivation(
        name=name,
        data=np.asarray(data, dtype=np.float32),
        muscle_synergy=muscle_synergy,
        rate=float(rate),
        starting_time=float(starting_time),
        description=description,
        **kwargs,
    )
    if nwbfile is not None:
        _module(nwbfile, "behavior").add(series)
    return series


def _units(nwbfile, n_units: int, seed: int):
    """The Units of ``nwbfile`` (made when absent), or a free-standing Units table."""
    from pynwb.misc import Units

    if nwbfile is not None and nwbfile.units is not None:
        return nwbfile.units
    rng = np.random.default_rng(seed)
    units = Units(
        name="units",
        description="mock sorted units",
        resolution=1.0 / 30000.0,
    )
    for i in range(n_units):
        units.add_unit(spike_times=np.sort(rng.uniform(0.0, 10.0, 50)), id=10 + i)
    if nwbfile is not None:
        nwbfile.units = units
    return units


def mock_SpikeTriggeredAverageTable(  # noqa: N802
    *,
    name: str = "SpikeTriggeredAverages",
    nwbfile: Any = None,
    units: Any = None,
    n_units: int = 2,
    muscle_name: Sequence[str] | None = None,
    n_muscles: int = 4,
    window: tuple[float, float] = (-0.03, 0.05),
    emg_rate: float = 1000.0,
    lags: np.ndarray | None = None,
    emg_series: Any = None,
    with_effects: bool = True,
    seed: int = 0,
    **kwargs: Any,
) -> SpikeTriggeredAverageTable:
    """A SpikeTriggeredAverageTable with one row per (unit, muscle) and planted effects.

    Each unit facilitates its first muscle (PSF, field +1) and suppresses its second (PSpS,
    field -0.5); other muscles show no effect.

    Parameters
    ----------
    nwbfile
        Its Units are used (created when absent) and the table is added to
        ``processing["ecephys"]``.
    units
        A Units table to point into instead (its first ``n_units`` rows are used).
    muscle_name, n_muscles
        Muscles of every unit.
    window, emg_rate
        Averaging window (s) and EMG rate (Hz).
    lags
        Times of the STA samples (s); default: the EMG samples inside the window.
    emg_series
        A 2-D TimeSeries with one column per muscle, to reference from each row.
    with_effects
        Include the effect columns (effect, mpi, ppi, p_value, onset, peak_latency, offset,
        field_value).
    """
    if units is None:
        units = _units(nwbfile, n_units, seed)
    n_units = min(n_units, len(units))
    if muscle_name is None:
        muscle_name = list(_MUSCLES[:n_muscles])
    muscles = list(muscle_name)
    m = len(muscles)
    if lags is None:
        first, last = int(np.ceil(window[0] * emg_rate)), int(np.floor(window[1] * emg_rate))
        lags = np.arange(first, last + 1) / emg_rate
    lags = np.asarray(lags, dtype=float)
    rng = np.random.default_rng(seed)
    base = 1.0 + 0.05 * rng.standard_normal((n_units * m, lags.size))
    effect, field, mpi = [], [], []
    for _u in range(n_units):
        for j in range(m):
            label = "PSF" if j == 0 else "PSpS" if j == 1 else "none"
            effect.append(label)
            field.append({"PSF": 1.0, "PSpS": -0.5, "none": 0.0}[label])
            mpi.append({"PSF": 40.0, "PSpS": -20.0, "none": np.nan}[label])
    in_effect = (lags >= 0.006) & (lags <= 0.015)
    sta = base * 1e-5
    sta[:, in_effect] *= 1.0 + np.asarray(np.nan_to_num(mpi))[:, None] / 100.0
    has = np.array([e != "none" for e in effect])
    columns: dict[str, Any] = {}
    if with_effects:
        columns = {
            "effect": effect,
            "mpi": mpi,
            "ppi": np.where(has, np.asarray(mpi) * 1.5, np.nan),
            "p_value": np.where(has, 1e-4, 0.5),
            "onset": np.where(has, 0.006, np.nan),
            "peak_latency": np.where(has, 0.010, np.nan),
            "offset": np.where(has, 0.015, np.nan),
            "field_value": field,
        }
    if emg_series is not None:
        kwargs.setdefault("emg_series", [emg_series] * (n_units * m))
        kwargs.setdefault("emg_channel", np.tile(np.arange(m), n_units))
    for key, value in _SOFTWARE.items():
        kwargs.setdefault(key, value)
    kwargs.setdefault("parameters", {"window": list(window), "baseline": [-0.03, -0.01]})
    arguments = dict(
        name=name,
        unit=np.repeat(np.arange(n_units), m),
        units_table=units,
        muscle_name=muscles * n_units,
        sta=sta.astype(np.float32),
        lags=lags,
        window=np.asarray(window, dtype=float),
        emg_rate=float(emg_rate),
        emg_unit="V",
        n_spikes_used=np.full(n_units * m, 48),
        n_spikes_excluded=np.full(n_units * m, 2),
    )
    arguments.update(columns)
    arguments.update(kwargs)
    table = SpikeTriggeredAverageTable(**arguments)
    if nwbfile is not None:
        _module(nwbfile, "ecephys").add(table)
    return table
