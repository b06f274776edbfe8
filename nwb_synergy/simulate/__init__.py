"""Simulated data with known ground truth: synergies, spikes with planted effects, sessions."""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "simulate_synergies": "nwb_synergy.simulate.synergies",
    "SimulatedSynergies": "nwb_synergy.simulate.synergies",
    "simulate_spikes": "nwb_synergy.simulate.spikes",
    "SimulatedSpikes": "nwb_synergy.simulate.spikes",
    "simulate_session": "nwb_synergy.simulate.session",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nwb_synergy.simulate' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)
