"""nwb_synergy: muscle synergies, spike-triggered averages and muscle fields from NWB files.

The public API is imported lazily (PEP 562), so ``import nwb_synergy`` stays fast and torch is
only imported when RLVM is used. The NWB extension namespace ``ndx-muscle-synergy`` is loaded
on import, so that files written with our types open as soon as the package is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # containers and errors
    "EMG": "nwb_synergy.signals",
    "EMGSource": "nwb_synergy.signals",
    "InputError": "nwb_synergy.errors",
    "NWBSynergyError": "nwb_synergy.errors",
    "OutputError": "nwb_synergy.errors",
    "ResultsExistError": "nwb_synergy.errors",
    # NWB extension types
    "MuscleSynergy": "nwb_synergy.ndx",
    "SynergyActivation": "nwb_synergy.ndx",
    "SpikeTriggeredAverageTable": "nwb_synergy.ndx",
    # reading and writing
    "read_emg": "nwb_synergy.io",
    "read_spike_trains": "nwb_synergy.io",
    "find_emg_candidates": "nwb_synergy.io",
    "open_emg": "nwb_synergy.io",
    "emg_from_neo": "nwb_synergy.io",
    "emg_to_neo": "nwb_synergy.io",
    "spike_trains_from_neo": "nwb_synergy.io",
    "spike_trains_to_neo": "nwb_synergy.io",
    "read_neo_block": "nwb_synergy.io",
    "write_synergies": "nwb_synergy.io",
    "write_sta": "nwb_synergy.io",
    "edit_nwb": "nwb_synergy.io",
    "save_nwb": "nwb_synergy.io",
    # conditioning, intervals and cycles
    "condition_emg": "nwb_synergy.emg",
    "choose_conditioning": "nwb_synergy.emg",
    "condition_segments": "nwb_synergy.emg",
    "Intervals": "nwb_synergy.intervals",
    "normalize_cycles": "nwb_synergy.cycles",
    "activation_metrics": "nwb_synergy.cycles",
    # synergies
    "NMF": "nwb_synergy.factorize",
    "RLVM": "nwb_synergy.factorize",
    "select_n_synergies": "nwb_synergy.factorize",
    "compare_synergies": "nwb_synergy.compare",
    "negative_components": "nwb_synergy.negcp",
    # spike-triggered averages and muscle fields
    "spike_triggered_average": "nwb_synergy.sta",
    "post_spike_effects": "nwb_synergy.sta",
    "muscle_field": "nwb_synergy.sta",
    "field_synergy_similarity": "nwb_synergy.sta",
    "negcp_psps_correspondence": "nwb_synergy.sta",
    # simulation
    "simulate_synergies": "nwb_synergy.simulate",
    "simulate_spikes": "nwb_synergy.simulate",
    "simulate_session": "nwb_synergy.simulate",
    # end to end
    "analyze_session": "nwb_synergy.pipeline",
    "AnalysisOptions": "nwb_synergy.pipeline",
    "analyze_many": "nwb_synergy.batch",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nwb_synergy' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


# register the ndx-muscle-synergy namespace and classes, so files written with our types open
importlib.import_module("nwb_synergy.ndx")

if TYPE_CHECKING:  # pragma: no cover - for static analysers only
    from .compare import compare_synergies  # noqa: F401
    from .emg import condition_emg  # noqa: F401
    from .errors import InputError, NWBSynergyError, OutputError, ResultsExistError  # noqa: F401
    from .factorize import NMF, RLVM, select_n_synergies  # noqa: F401
    from .ndx import MuscleSynergy, SpikeTriggeredAverageTable, SynergyActivation  # noqa: F401
    from .pipeline import analyze_session  # noqa: F401
    from .signals import EMG, EMGSource  # noqa: F401
