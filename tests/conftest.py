"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# keep torch and BLAS from oversubscribing the 2-core CI machine
os.environ.setdefault("OMP_NUM_THREADS", "2")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
WALKING = SHARED_DATA / "musclesynergies_walking"


@pytest.fixture
def walking_dir() -> Path:
    """Folder of the real walking trial in ../shared/data; skips the test when absent."""
    if not (WALKING / "ID0012_TW_01_raw_emg.csv").exists():
        pytest.skip("real walking data not found in ../shared/data/musclesynergies_walking")
    return WALKING
