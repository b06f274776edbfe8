"""The built wheel ships the extension spec where nwb_synergy.ndx looks for it."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC_FILES = ("ndx-muscle-synergy.namespace.yaml", "ndx-muscle-synergy.extensions.yaml")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (path,) = out.glob("nwb_synergy-*.whl")
    return path


def test_wheel_contains_the_spec(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for name in SPEC_FILES:
            member = f"nwb_synergy/spec/{name}"
            assert member in names
            assert zf.read(member).decode() == (ROOT / "spec" / name).read_text()
        assert "nwb_synergy/ndx.py" in names


def test_unpacked_wheel_loads_its_own_spec(wheel, tmp_path):
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tmp_path)
    code = (
        "import nwb_synergy.ndx as ndx, pynwb; "
        "print(ndx.spec_path()); "
        "print(pynwb.get_type_map().namespace_catalog.get_namespace('ndx-muscle-synergy')"
        "['version'])"
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    spec, version = result.stdout.split()
    assert Path(spec) == tmp_path / "nwb_synergy" / "spec" / SPEC_FILES[0]
    assert version == "0.1.0"
