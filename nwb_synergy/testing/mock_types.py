"""Mock factories for the extension types, stamped as written by nwb_synergy.

The factories themselves live with the extension (:mod:`ndx_muscle_synergy.testing.mock`);
these wrappers only default ``software`` and ``software_version`` to nwb_synergy's. Every
factory returns a valid object; any argument can be overridden. When ``nwbfile`` is given, the
object is added to it (see the extension's module for where).
"""

from __future__ import annotations

from typing import Any

from ndx_muscle_synergy.testing import mock as _mock
from ndx_muscle_synergy.testing.mock import mock_weights

from ..provenance import software_version

__all__ = [
    "mock_MuscleSynergy",
    "mock_SpikeTriggeredAverageTable",
    "mock_SynergyActivation",
    "mock_weights",
]


def _ours(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {"software": "nwb_synergy", "software_version": software_version(), **kwargs}


def mock_MuscleSynergy(**kwargs: Any):  # noqa: N802 - named after the type, as pynwb's mocks are
    """A valid MuscleSynergy (:func:`ndx_muscle_synergy.testing.mock.mock_MuscleSynergy`)."""
    return _mock.mock_MuscleSynergy(**_ours(kwargs))


def mock_SynergyActivation(**kwargs: Any):  # noqa: N802
    """A valid SynergyActivation with its MuscleSynergy (the extension's mock, stamped ours)."""
    if kwargs.get("muscle_synergy") is None:
        kwargs["muscle_synergy"] = mock_MuscleSynergy(
            nwbfile=kwargs.get("nwbfile"), seed=kwargs.get("seed", 0)
        )
    return _mock.mock_SynergyActivation(**kwargs)


def mock_SpikeTriggeredAverageTable(**kwargs: Any):  # noqa: N802
    """A valid SpikeTriggeredAverageTable (the extension's mock, stamped ours)."""
    return _mock.mock_SpikeTriggeredAverageTable(**_ours(kwargs))
