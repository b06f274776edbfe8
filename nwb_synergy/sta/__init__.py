"""Spike-triggered averages, post-spike effects and muscle fields.

See :mod:`nwb_synergy.sta.average` (the STA and its baselines), :mod:`nwb_synergy.sta.effects`
(PSF / PSpS detection) and :mod:`nwb_synergy.sta.fields` (muscle fields and synergies).

:mod:`nwb_synergy.sta.elephant` is a drop-in replacement for
``elephant.sta.spike_triggered_average`` (same signature, Neo result, warnings and exceptions)
on the same engine; it is imported on demand (``from nwb_synergy.sta.elephant import
spike_triggered_average``), so that ``nwb_synergy.sta`` does not load Neo.
"""

from .average import (
    LazySweeps,
    STAResult,
    increment_shifted_average,
    spike_triggered_average,
    spike_triggered_averages,
)
from .effects import EFFECT_COLUMNS, post_spike_effects
from .fields import (
    Correspondence,
    FieldSimilarity,
    field_synergy_similarity,
    muscle_field,
    negcp_psps_correspondence,
)

__all__ = [
    "EFFECT_COLUMNS",
    "Correspondence",
    "FieldSimilarity",
    "LazySweeps",
    "STAResult",
    "field_synergy_similarity",
    "increment_shifted_average",
    "muscle_field",
    "negcp_psps_correspondence",
    "post_spike_effects",
    "spike_triggered_average",
    "spike_triggered_averages",
]
