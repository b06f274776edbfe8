"""Sessions read from URLs (a range-capable HTTP server on 127.0.0.1), open h5py files, file
objects and NWBFiles: the same numbers as from the local file, and only the bytes needed."""

from __future__ import annotations

import contextlib
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import h5py
import numpy as np
import pytest
from pynwb import NWBHDF5IO, TimeSeries

from nwb_synergy.cli import EXIT_INPUT, EXIT_OK, main
from nwb_synergy.errors import InputError
from nwb_synergy.io.read import read_emg
from nwb_synergy.io.save import edit_nwb
from nwb_synergy.io.units import read_spike_trains
from nwb_synergy.pipeline import analyze_session
from nwb_synergy.simulate.session import simulate_session

#: a fast analysis: NMF with K fixed, STAs with few permutations
FAST = {"methods": ("nmf",), "n_synergies": 2, "n_permutations": 50, "progress": False}
CAMERA_BYTES = 6_000_000


# -- a range-capable HTTP server on 127.0.0.1 ------------------------------------------------------


class RangeServer:
    """What the server served: bytes in range responses, whole-file GETs, and its base URL."""

    def __init__(self, root: Path):
        self.root = root.resolve()
        self.ranged_bytes = 0
        self.whole_file_gets = 0
        self.url = ""
        self.lock = threading.Lock()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # clients hang up: not an error
        pass


def _handler(state: RangeServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _file(self) -> Path | None:
            path = (state.root / self.path.split("?")[0].lstrip("/")).resolve()
            if state.root not in path.parents or not path.is_file():
                self.send_error(404)
                return None
            return path

        def _headers(self, code: int, length: int, extra: dict[str, str] | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()

        def do_HEAD(self) -> None:
            path = self._file()
            if path is not None:
                self._headers(200, path.stat().st_size)

        def do_GET(self) -> None:
            path = self._file()
            if path is None:
                return
            size = path.stat().st_size
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            with contextlib.suppress(ConnectionError):
                if match is None:  # a whole-file GET (remfile's length probe hangs up at once)
                    with state.lock:
                        state.whole_file_gets += 1
                    self._headers(200, size)
                    with open(path, "rb") as f:
                        while chunk := f.read(1 << 16):
                            self.wfile.write(chunk)
                    return
                start = int(match.group(1))
                stop = min(int(match.group(2) or size - 1), size - 1)
                with open(path, "rb") as f:
                    f.seek(start)
                    body = f.read(stop - start + 1)
                with state.lock:
                    state.ranged_bytes += len(body)
                self._headers(206, len(body), {"Content-Range": f"bytes {start}-{stop}/{size}"})
                self.wfile.write(body)

    return Handler


@contextlib.contextmanager
def range_server(root: Path):
    """Serve ``root`` over HTTP with Range support on 127.0.0.1 (a free port); yields the state."""
    state = RangeServer(root)
    server = _QuietServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# -- a session with a large dataset the analysis never needs -------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A small simulated session plus 6 MB of camera data, served over HTTP."""
    folder = tmp_path_factory.mktemp("served")
    path = folder / "session.nwb"
    simulate_session(
        path, n_muscles=6, n_synergies=2, n_units=3, n_inhibitory=1, n_facilitatory=1,
        duration=20.0, random_state=5,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    with edit_nwb(path) as nwbfile:
        nwbfile.add_acquisition(
            TimeSeries(
                name="camera_brightness",
                data=rng.random((CAMERA_BYTES // 40, 10), dtype=np.float32),
                unit="a.u.",
                rate=100.0,
                description="Mean brightness of 10 regions of a video (not needed here).",
            )
        )
    with h5py.File(path, "r") as f:
        emg_bytes = f["acquisition/EMG/data"].id.get_storage_size()
    with range_server(folder) as server:
        yield path, f"{server.url}/session.nwb", server, emg_bytes


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {
            "weights": f["processing/behavior/MuscleSynergyNMF/weights"][:],
            "activations": f["processing/behavior/SynergyActivationNMF/data"][:],
            "sta": f["processing/ecephys/SpikeTriggeredAverages/sta"][:],
            "effect": f["processing/ecephys/SpikeTriggeredAverages/effect"][:],
            "spike_times": f["units/spike_times"][:],
        }


def test_a_streamed_session_gives_the_local_files_results_reading_only_what_it_needs(
    served, tmp_path
):
    path, url, server, emg_bytes = served
    local = analyze_session(path, tmp_path / "local.nwb", **FAST)
    before = server.ranged_bytes
    remote = analyze_session(url, tmp_path / "remote.nwb", **FAST)
    fetched = server.ranged_bytes - before
    ours, theirs = _arrays(local.output), _arrays(remote.output)
    for key, value in ours.items():
        np.testing.assert_array_equal(theirs[key], value, err_msg=key)
    assert remote.source == url and remote.info.emg_series == ["acquisition/EMG"]
    # the EMG (960 kB) and the structure, never the 6 MB of camera data
    size = path.stat().st_size
    assert size > emg_bytes + CAMERA_BYTES
    assert emg_bytes <= fetched < emg_bytes + 1_000_000, (fetched, emg_bytes)
    assert server.whole_file_gets <= 2  # remfile's length probes, which hang up at once


def test_readers_take_a_url_an_open_h5py_file_a_file_object_and_an_nwbfile(served):
    path, url, _, _ = served
    expected = read_emg(path)
    spikes = read_spike_trains(path)
    with h5py.File(path, "r") as h5file, open(path, "rb") as fileobj:
        for source in (url, h5file, fileobj):
            emg = read_emg(source)
            np.testing.assert_array_equal(emg.data, expected.data)
            assert emg.muscle_names == expected.muscle_names
            trains = read_spike_trains(source)
            assert list(trains) == list(spikes)
            for uid in spikes:
                np.testing.assert_array_equal(trains[uid], spikes[uid])
        assert h5file.id.valid and not fileobj.closed  # the caller's objects stay open
    assert read_emg(url).source.file == url
    with NWBHDF5IO(str(path), "r") as io:
        np.testing.assert_array_equal(read_emg(io.read()).data, expected.data)


def test_fsspec_streams_the_same_samples_as_remfile(served):
    pytest.importorskip("aiohttp")
    from nwb_synergy.io.files import open_nwb

    path, url, _, _ = served
    expected = read_emg(path)
    for stream in ("remfile", "fsspec"):
        io, nwbfile = open_nwb(url, stream=stream)
        try:
            np.testing.assert_array_equal(read_emg(nwbfile).data, expected.data)
        finally:
            io.close()


def test_analyze_session_takes_an_nwbfile_and_adds_results_in_memory_without_output(served):
    path, _, _, _ = served
    with NWBHDF5IO(str(path), "r") as io:
        nwbfile = io.read()
        results = analyze_session(nwbfile, sta=False, **{**FAST, "n_permutations": 10})
        assert results.output is None
        table = nwbfile.processing["behavior"]["MuscleSynergyNMF"]
        np.testing.assert_array_equal(
            table.weights_array(), results.models["nmf"].weights_.astype(np.float32)
        )


def test_a_missing_url_and_a_path_made_of_a_url_are_one_clear_error(served):
    _, url, server, _ = served
    with pytest.raises(InputError) as info:
        read_emg(f"{server.url}/absent.nwb")
    assert "absent.nwb" in str(info.value) and "404" in str(info.value)
    with pytest.raises(InputError) as info:
        read_emg(Path(url))  # Path() turns https:// into https:/
    assert "collapsed" in str(info.value) and "as strings" in str(info.value)


def test_cli_needs_an_output_for_a_url_and_then_writes_the_results(served, tmp_path, capsys):
    _, url, _, _ = served
    code = main(["extract", url, "--n-synergies", "2", "-q"])
    err = capsys.readouterr().err
    assert code == EXIT_INPUT and "-o" in err and "127.0.0.1" in err
    out = tmp_path / "from_url.nwb"
    code = main(["extract", url, "--n-synergies", "2", "-q", "-o", str(out)])
    assert code == EXIT_OK, capsys.readouterr().err
    with h5py.File(out, "r") as f:
        assert f["processing/behavior/MuscleSynergyNMF/weights"].shape == (6, 2)
        assert "acquisition" not in f or len(f["acquisition"]) == 0
        assert url in f["general/notes"][()].decode()
