"""The built wheels ship what is needed: the extension's wheel holds the spec and the classes,
ours holds nwb_synergy and depends on it; unpacked together they load the spec from the
extension."""

from __future__ import annotations

import email
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXTENSION = ROOT / "ndx-muscle-synergy"
SPEC_FILES = ("ndx-muscle-synergy.namespace.yaml", "ndx-muscle-synergy.extensions.yaml")


def _build(project: Path, out: Path, pattern: str) -> Path:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(project)],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (path,) = out.glob(pattern)
    return path


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    return {
        "nwb_synergy": _build(ROOT, out, "nwb_synergy-*.whl"),
        "ndx_muscle_synergy": _build(EXTENSION, out, "ndx_muscle_synergy-*.whl"),
    }


def _metadata(zf: zipfile.ZipFile) -> email.message.Message:
    (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
    return email.message_from_string(zf.read(name).decode())


def test_extension_wheel_holds_the_spec_classes_mocks_and_license(wheels):
    with zipfile.ZipFile(wheels["ndx_muscle_synergy"]) as zf:
        names = set(zf.namelist())
        for name in SPEC_FILES:
            member = f"ndx_muscle_synergy/spec/{name}"
            assert zf.read(member).decode() == (EXTENSION / "spec" / name).read_text()
        for module in ("__init__", "muscle_synergy", "errors", "testing/mock"):
            assert f"ndx_muscle_synergy/{module}.py" in names
        assert not [n for n in names if n.startswith(("nwb_synergy/", "tests/"))]
        (license_file,) = [n for n in names if n.endswith("licenses/LICENSE.txt")]
        assert zf.read(license_file).decode() == (EXTENSION / "LICENSE.txt").read_text()
        meta = _metadata(zf)
    assert meta["Name"] == "ndx-muscle-synergy" and meta["Version"] == "0.1.0"
    assert meta["License-Expression"] == "BSD-3-Clause"
    assert "nwb_synergy developers" in meta["Author-email"]
    runtime = sorted(r for r in meta.get_all("Requires-Dist") if "extra ==" not in r)
    assert runtime == ["hdmf>=6.0", "numpy>=1.24", "pynwb>=4.0"]


def test_nwb_synergy_wheel_depends_on_the_extension_and_carries_no_copy_of_it(wheels):
    with zipfile.ZipFile(wheels["nwb_synergy"]) as zf:
        names = set(zf.namelist())
        assert "nwb_synergy/ndx.py" in names
        assert not [n for n in names if n.endswith(".yaml") or "ndx_muscle_synergy" in n]
        (license_file,) = [n for n in names if n.endswith("licenses/LICENSE")]
        text = zf.read(license_file).decode()
        meta = _metadata(zf)
    assert "Copyright (c) 2026, nwb_synergy developers" in text
    assert meta["License-Expression"] == "BSD-3-Clause"
    assert "ndx-muscle-synergy<0.2,>=0.1.0" in meta.get_all("Requires-Dist")


def test_unpacked_wheels_load_the_spec_shipped_in_the_extension(wheels, tmp_path):
    for wheel in wheels.values():
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(tmp_path)
    code = (
        "import nwb_synergy.ndx as ndx, ndx_muscle_synergy, pynwb; "
        "print(ndx.spec_path()); print(ndx_muscle_synergy.__file__); "
        "print(ndx.MuscleSynergy is ndx_muscle_synergy.MuscleSynergy); "
        "print(pynwb.get_type_map().namespace_catalog.get_namespace('ndx-muscle-synergy')"
        "['version'])"
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    spec, package, same, version = result.stdout.split()
    assert Path(spec) == tmp_path / "ndx_muscle_synergy" / "spec" / SPEC_FILES[0]
    assert Path(package) == tmp_path / "ndx_muscle_synergy" / "__init__.py"
    assert same == "True" and version == "0.1.0"
