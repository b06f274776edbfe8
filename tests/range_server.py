"""A range-capable HTTP server on 127.0.0.1, run in its own process, for streaming tests.

Run as ``python range_server.py ROOT``: it serves the files under ROOT on a free port of
127.0.0.1, prints ``PORT <n>`` on its first line of output, and answers ``GET /__stats__`` with
the bytes it served in range responses and the number of whole-file GETs, as JSON.

The server lives in another process on purpose: a server thread inside the test process could
start the garbage collector while h5py holds its lock in a read, and hang both (h5py issue 2019),
which is a hazard of the test, not of streaming from a real server.
:func:`range_server` starts it and stops it.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

STATS_PATH = "/__stats__"


class ServerState:
    """Counters of what the server served (inside the server process)."""

    def __init__(self, root: Path):
        self.root = root.resolve()
        self.ranged_bytes = 0
        self.whole_file_gets = 0
        self.lock = threading.Lock()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # clients hang up: not an error
        pass


def _handler(state: ServerState):
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

        def _stats(self) -> None:
            with state.lock:
                body = json.dumps(
                    {"ranged_bytes": state.ranged_bytes, "whole_file_gets": state.whole_file_gets}
                ).encode()
            self._headers(200, len(body), {"Content-Type": "application/json"})
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == STATS_PATH:
                self._stats()
                return
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


class RangeServer:
    """The test side of a server process: its base URL and its counters."""

    def __init__(self, url: str):
        self.url = url

    def _stats(self) -> dict[str, int]:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxies
        with opener.open(self.url + STATS_PATH, timeout=30) as response:
            return json.loads(response.read())

    @property
    def ranged_bytes(self) -> int:
        """Bytes served in range (206) responses so far."""
        return self._stats()["ranged_bytes"]

    @property
    def whole_file_gets(self) -> int:
        """GETs without a Range header so far."""
        return self._stats()["whole_file_gets"]


@contextlib.contextmanager
def range_server(root: Path):
    """Serve ``root`` from a server process on 127.0.0.1; yields a :class:`RangeServer`."""
    proc = subprocess.Popen(
        [sys.executable, __file__, str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the range server did not start (said {line!r})")
        yield RangeServer(f"http://127.0.0.1:{int(line.split()[1])}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def _serve(root: str) -> None:
    server = _QuietServer(("127.0.0.1", 0), _handler(ServerState(Path(root))))
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    _serve(sys.argv[1])
