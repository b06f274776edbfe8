"""Provenance: the one place that knows the software's version and turns values into JSON.

Models (``SynergyModel.provenance``), writers (``io/write.py``) and the pipeline's stored options
all go through these helpers, so what a results file says about how it was made is written one
way.
"""

from __future__ import annotations

import dataclasses
import json
import platform
from collections.abc import Mapping
from importlib import metadata
from typing import Any

import numpy as np

DISTRIBUTION = "nwb-synergy"
#: libraries whose versions are stored with every result
VERSIONED = ("nwb-synergy", "numpy", "scipy", "torch", "pynwb", "hdmf", "h5py", "scikit-learn")


def software_version() -> str:
    """Version of nwb_synergy: the installed distribution's, else the package's own."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        from . import __version__

        return __version__


def library_versions() -> dict[str, str]:
    """Versions of Python and the numerical libraries, without importing them (torch is slow)."""
    out = {"python": platform.python_version()}
    for dist in VERSIONED:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    out[DISTRIBUTION] = software_version()
    return out


def jsonable(value: Any) -> Any:
    """``value`` as plain Python that :func:`json.dumps` accepts.

    NumPy scalars and arrays become numbers and lists, mappings become dicts with string keys,
    tuples become lists, dataclass instances become dicts of their fields; anything else is
    stored as its ``repr``.
    """
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def to_json(value: Any) -> str:
    """Compact, key-sorted JSON text of ``value`` (through :func:`jsonable`)."""
    return json.dumps(jsonable(value), sort_keys=True, allow_nan=True)
