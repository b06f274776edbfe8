"""Test helpers of ndx-muscle-synergy: mock factories in :mod:`ndx_muscle_synergy.testing.mock`."""
