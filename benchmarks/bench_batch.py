"""Benchmark: sessions per minute of ``analyze_many`` on a LocalCluster of 1 and of 2 workers.

Simulated sessions (12 muscles, 60 s of raw EMG at 2 kHz, 6 units; about 6 MB each) are
analysed with the demo's settings (NMF with K chosen by the linear-fit rule, RLVM with a fixed
L1 weight, NegCps guarded without the bootstrap, STAs, fields, 1,000 permutations) into
results-only files, on one worker process and on two. Each run starts its own LocalCluster
(the start-up, worker imports included, is timed apart: a user pays it once per batch) and
writes into a fresh folder, so nothing is skipped. Runs alternate (1, 2, 1, 2, ...) and the best
of ``--repeats`` is kept for each number of workers, since other processes share the cores.

Sessions per minute = sessions / wall time of ``analyze_many`` once the workers are up. On the
2-core machine of this project the second worker can at best double the rate.

Run: ``python benchmarks/bench_batch.py [--sessions 6] [--duration 60] [--repeats 2]``.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import tempfile
import time
from pathlib import Path

from distributed import Client

from nwb_synergy.batch import _cluster, analyze_many
from nwb_synergy.demo import QUICK_ANALYSIS
from nwb_synergy.simulate.session import simulate_session


def make_sessions(folder: Path, n: int, duration: float) -> list[Path]:
    """``n`` simulated sessions (seeds 0..n-1) in ``folder``."""
    paths = []
    for seed in range(n):
        path = folder / f"session{seed:02d}.nwb"
        simulate_session(
            path, n_muscles=12, n_synergies=3, n_units=6, n_inhibitory=2, n_facilitatory=2,
            duration=duration, random_state=seed,
        )  # fmt: skip
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> dict[int, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=6, help="number of sessions (6)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds each (60)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each, best kept (2)")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    rates: dict[int, float] = {}
    try:
        sessions = make_sessions(folder, args.sessions, args.duration)
        size = sum(p.stat().st_size for p in sessions) / len(sessions) / 1e6
        print(f"{len(sessions)} sessions of {args.duration:g} s ({size:.1f} MB each)")
        best: dict[int, tuple[float, float]] = {}
        for repeat in range(args.repeats):
            for workers in (1, 2):
                started = time.perf_counter()
                cluster = _cluster(workers, len(sessions), True)
                client = Client(cluster)
                try:
                    client.run(importlib.import_module, "nwb_synergy.pipeline")
                    startup = time.perf_counter() - started
                    started = time.perf_counter()
                    result = analyze_many(
                        sessions, folder / f"out_{workers}_{repeat}", client=client,
                        progress=False, n_permutations=1000, **QUICK_ANALYSIS,
                    )  # fmt: skip
                    seconds = time.perf_counter() - started
                finally:
                    client.close()
                    cluster.close()
                if result.n_failed:
                    raise SystemExit(result.summary_text())
                if workers not in best or seconds < best[workers][0]:
                    best[workers] = (seconds, startup)
        for workers, (seconds, startup) in best.items():
            rates[workers] = 60.0 * len(sessions) / seconds
            print(
                f"  {workers} worker{'s' if workers > 1 else ' '}: {seconds:6.1f} s, "
                f"{rates[workers]:5.2f} sessions per minute (cluster start-up {startup:.1f} s)"
            )
        print(f"  speed-up with 2 workers: {rates[2] / rates[1]:.2f}x")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return rates


if __name__ == "__main__":
    main()
