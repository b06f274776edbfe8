"""Synergy extraction: NMF, RLVM, model-order selection and their shared result type."""

from __future__ import annotations

import importlib
from typing import Any

from .base import SynergyModel
from .metrics import r2, vaf

_LAZY = {
    "NMF": "nwb_synergy.factorize.nmf",
    "RLVM": "nwb_synergy.factorize.rlvm",
    "select_n_synergies": "nwb_synergy.factorize.order",
}

__all__ = ["SynergyModel", "vaf", "r2", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nwb_synergy.factorize' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)
