"""NWB extension ``ndx-muscle-synergy``: muscle synergies, their activations, and
spike-triggered averages of EMG with post-spike effects and muscle fields.

Importing the package loads the namespace (the YAML of ``spec/``) into pynwb and registers the
classes, so that files holding these types read back as :class:`MuscleSynergy`,
:class:`SynergyActivation` and :class:`SpikeTriggeredAverageTable`. Dependencies: pynwb, hdmf
and numpy only.
"""

from __future__ import annotations

from pathlib import Path

from pynwb import get_type_map, load_namespaces

__version__ = "0.1.0"
NAMESPACE = "ndx-muscle-synergy"


def spec_path() -> Path:
    """Path of ``ndx-muscle-synergy.namespace.yaml``.

    In an installed wheel the spec sits inside the package (``ndx_muscle_synergy/spec/``); in a
    source checkout or an editable install it is the ``spec/`` folder of the extension's root.
    """
    filename = f"{NAMESPACE}.namespace.yaml"
    here = Path(__file__).resolve().parent
    candidates = (here / "spec", here.parents[2] / "spec")  # wheel; src/pynwb/<package>
    for folder in candidates:
        if (folder / filename).is_file():
            return folder / filename
    raise FileNotFoundError(
        f"{filename} not found in {candidates[0]} nor {candidates[1]}; regenerate it with "
        "src/spec/create_extension_spec.py"
    )


if NAMESPACE not in get_type_map().namespace_catalog.namespaces:
    load_namespaces(str(spec_path()))

# the classes register themselves with the namespace loaded above
from .errors import InvalidDataError, set_error_class  # noqa: E402
from .muscle_synergy import (  # noqa: E402
    EFFECT_LABELS,
    MuscleSynergy,
    SpikeTriggeredAverageTable,
    SynergyActivation,
)

__all__ = [
    "EFFECT_LABELS",
    "NAMESPACE",
    "InvalidDataError",
    "MuscleSynergy",
    "SpikeTriggeredAverageTable",
    "SynergyActivation",
    "__version__",
    "set_error_class",
    "spec_path",
]
