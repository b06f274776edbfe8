"""The examples run as tests (in their fast mode) and show what they claim."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str):
    """Import ``examples/<name>.py`` as a module (examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.realdata
def test_walking_trial(walking_dir, tmp_path, capsys):
    out = load("walking_trial").main(
        ["--data", str(walking_dir), "--out", str(tmp_path), "--fast", "--quiet"]
    )
    # our conditioning reproduces musclesyneRgies's filtered envelopes of the same cycles
    assert out["conditioning_r"].shape == (3,)
    assert out["conditioning_r"].min() > 0.99
    results = out["results"]
    assert set(results.models) == {"nmf", "rlvm"}
    for model in results.models.values():
        k = model.weights_.shape[1]
        assert 3 <= k <= 7  # walking: 4-5 synergies in the literature
        assert model.r2_ > 0.6
    assert results.notes == ["no Units in the file: synergies only, no STA"]
    names = {p.name for p in out["figures"]}
    assert {"synergies.png", "activations.png", "model_order_nmf.png"} <= names


def test_walking_trial_skips_without_data(tmp_path, capsys):
    out = load("walking_trial").main(["--data", str(tmp_path / "absent"), "--out", str(tmp_path)])
    assert out is None
    assert "walking data not found" in capsys.readouterr().out


def test_quickstart(tmp_path, capsys):
    out = load("quickstart").main(["--fast", "--out", str(tmp_path)])
    text = capsys.readouterr().out
    assert "NMF chose K" in text and "NegCps" in text
    sim, rlvm, nmf = out["sim"], out["rlvm"], out["nmf"]
    from nwb_synergy import compare_synergies

    assert compare_synergies(sim.weights, rlvm.weights_).mean_cosine > 0.9
    assert (nmf.weights_ >= 0).all()
    assert (rlvm.weights_ < 0).any()
    assert np.asarray(out["negcps"].mask).sum() >= 1
    assert out["results"].stas and (tmp_path / "results.nwb").exists()
    assert set(out["results"].models) == {"nmf"}  # --fast: NMF only on the session
    assert len(out["figures"]) >= 5
