"""The NWB extension ``ndx-muscle-synergy``, as nwb_synergy uses it.

The types live in their own package, :mod:`ndx_muscle_synergy` (folder ``ndx-muscle-synergy/``
of this repository; it needs only pynwb, hdmf and numpy, so that anyone can read our files
without nwb_synergy or torch). This module re-exports its public names, so that
``from nwb_synergy.ndx import MuscleSynergy`` keeps working, and makes the extension raise bad
input as :class:`ExtensionInputError`, which is both our
:class:`~nwb_synergy.errors.InputError` and the extension's
:class:`~ndx_muscle_synergy.InvalidDataError`.
"""

from __future__ import annotations

import ndx_muscle_synergy
from ndx_muscle_synergy import (
    EFFECT_LABELS,
    NAMESPACE,
    InvalidDataError,
    MuscleSynergy,
    SpikeTriggeredAverageTable,
    SynergyActivation,
    spec_path,
)

from .errors import InputError

__all__ = [
    "NAMESPACE",
    "EFFECT_LABELS",
    "ExtensionInputError",
    "MuscleSynergy",
    "SynergyActivation",
    "SpikeTriggeredAverageTable",
    "spec_path",
]


class ExtensionInputError(InputError, InvalidDataError):
    """Bad input to an extension type: an InputError for nwb_synergy, an InvalidDataError for
    users of ndx_muscle_synergy alone."""

    def __init__(self, problem: str, *, obj: str | None = None):
        super().__init__(problem, obj=obj)
        # InputError passes its full message on to InvalidDataError.__init__ (next in the MRO),
        # which takes it for the problem: put the parts back
        self.problem, self.obj = problem, obj


ndx_muscle_synergy.set_error_class(ExtensionInputError)
