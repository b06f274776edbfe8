"""Mock factories for tests and examples (in the spirit of pynwb.testing.mock).

``mock_types``: our extension types (MuscleSynergy, SynergyActivation, SpikeTriggeredAverageTable).
``mock_files``: small NWB files holding EMG in each layout seen in real data, and Units.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = ("nwb_synergy.testing.mock_types", "nwb_synergy.testing.mock_files")


def __getattr__(name: str) -> Any:
    for module_name in _MODULES:
        module = importlib.import_module(module_name)
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module 'nwb_synergy.testing' has no attribute '{name}'")
