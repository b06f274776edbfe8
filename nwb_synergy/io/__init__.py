"""Reading EMG and spikes from NWB and Neo, writing results back to NWB (atomically)."""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "read_emg": "nwb_synergy.io.read",
    "read_spike_trains": "nwb_synergy.io.read",
    "find_emg_candidates": "nwb_synergy.io.read",
    "open_emg": "nwb_synergy.io.read",
    "emg_from_neo": "nwb_synergy.io.neo",
    "emg_to_neo": "nwb_synergy.io.neo",
    "spike_trains_from_neo": "nwb_synergy.io.neo",
    "spike_trains_to_neo": "nwb_synergy.io.neo",
    "read_neo_block": "nwb_synergy.io.neo",
    "write_synergies": "nwb_synergy.io.write",
    "write_sta": "nwb_synergy.io.write",
    "edit_nwb": "nwb_synergy.io.save",
    "save_nwb": "nwb_synergy.io.save",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nwb_synergy.io' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)
