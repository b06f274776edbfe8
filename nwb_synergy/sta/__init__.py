"""Spike-triggered averages, post-spike effects and muscle fields."""

from .average import LazySweeps, STAResult, spike_triggered_average, spike_triggered_averages
from .effects import post_spike_effects

__all__ = [
    "LazySweeps",
    "STAResult",
    "spike_triggered_average",
    "spike_triggered_averages",
    "post_spike_effects",
]
