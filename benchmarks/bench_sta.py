"""Benchmark: our spike-triggered average against elephant's, and a long on-disk recording.

Part 1, in one process, on the same input: 2,000 spikes x 16 muscles at 5 kHz (rectified
Gaussian noise, 100 s, window -30..+50 ms = 400 samples), as a Neo ``AnalogSignal`` and
``SpikeTrain``:

* elephant: ``elephant.sta.spike_triggered_average(signal, train, (-30 ms, 50 ms))`` (timed
  once: it takes tens of seconds);
* ours: ``spike_triggered_average(signal, train, window=...)`` with ``keep_sweeps=False`` (the
  mean only, what elephant computes) and with ``keep_sweeps=True`` (also the 2,000 x 400 x 16
  sweeps in memory); best of ``--repeats``.

The maximum absolute difference of the means and the used/unused counts are checked, and the
speed ratio printed. Peak memory is the tracemalloc peak of Python and NumPy allocations during
one call (elephant's with ``--elephant-memory``, which runs it a second time).

Part 2: 10^5 spikes x 32 muscles over ``--hours`` (1) of EMG at 5 kHz, float32, in an HDF5
file (h5py, written first in chunks; 2.3 GB per hour) or a ``np.memmap``
(``--backend memmap``), read through :class:`~nwb_synergy.EMG` in ordered chunks of 64 MB.
Sweeps do not fit in memory (5 GB), so they are kept lazily. Printed: time, tracemalloc peak,
and the growth of the process's peak RSS (for h5py; a memmap's pages count in RSS as they are
read). ``--effects`` also times :func:`post_spike_effects` (default method) on that STA;
``--check`` compares the first 2 minutes with an in-memory computation.

Run: ``python benchmarks/bench_sta.py [--repeats 5] [--hours 1] [--skip-long] [--skip-elephant]
[--effects] [--check]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np


def peak_memory(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Result of ``fn()`` and the tracemalloc peak (MB) during the call."""
    tracemalloc.start()
    out = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, peak / 2**20


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best_time(fn: Callable[[], Any], repeats: int) -> tuple[Any, float]:
    best = np.inf
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def part_elephant(args: argparse.Namespace) -> None:
    import neo
    import quantities as pq
    from elephant.sta import spike_triggered_average as elephant_sta

    from nwb_synergy.sta import spike_triggered_average

    rate, duration, n_muscles, n_spikes = 5000.0, 100.0, 16, 2000
    rng = np.random.default_rng(args.seed)
    x = np.abs(rng.standard_normal((int(rate * duration), n_muscles)))
    signal = neo.AnalogSignal(x, units="mV", sampling_rate=rate * pq.Hz, t_start=0 * pq.s)
    spikes = np.sort(rng.uniform(0, duration, n_spikes))
    train = neo.SpikeTrain(spikes * pq.s, t_start=0 * pq.s, t_stop=duration * pq.s)
    window = (-30 * pq.ms, 50 * pq.ms)
    print(f"Part 1: {n_spikes} spikes x {n_muscles} muscles at {rate:g} Hz, {duration:g} s")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        ref = elephant_sta(signal, train, window)
        t_el = time.perf_counter() - t0
        mem_el = None
        if args.elephant_memory:
            _, mem_el = peak_memory(lambda: elephant_sta(signal, train, window))

    def ours(keep: bool):
        return spike_triggered_average(signal, train, window=window, keep_sweeps=keep)

    mean_only, t_mean = best_time(lambda: ours(False), args.repeats)
    with_sweeps, t_sweeps = best_time(lambda: ours(True), args.repeats)
    _, mem_mean = peak_memory(lambda: ours(False))
    _, mem_sweeps = peak_memory(lambda: ours(True))
    diff = max(
        np.abs(mean_only.mean - ref.magnitude).max(),
        np.abs(with_sweeps.mean - ref.magnitude).max(),
    )
    counts_ok = (mean_only.n_used, mean_only.n_unused) == (
        int(ref.annotations["used_spikes"][0]),
        int(ref.annotations["unused_spikes"][0]),
    )
    print(f"  max |ours - elephant| = {diff:.3g}; used/unused counts equal: {counts_ok}")
    print(f"  elephant             : {t_el:8.3f} s" + (f", peak {mem_el:.1f} MB" if mem_el else ""))
    print(
        f"  ours, mean only      : {t_mean * 1e3:8.2f} ms, peak {mem_mean:.1f} MB, "
        f"{t_el / t_mean:,.0f}x faster"
    )
    print(
        f"  ours, with sweeps    : {t_sweeps * 1e3:8.2f} ms, peak {mem_sweeps:.1f} MB, "
        f"{t_el / t_sweeps:,.0f}x faster"
    )
    if diff > 1e-9 or not counts_ok:
        raise SystemExit("MISMATCH with elephant")


def _write_long(path: str, backend: str, n_times: int, n_muscles: int, seed: int) -> Any:
    rng = np.random.default_rng(seed)
    block = 2**20
    if backend == "h5py":
        import h5py

        with h5py.File(path, "w") as f:
            ds = f.create_dataset(
                "emg", shape=(n_times, n_muscles), dtype=np.float32, chunks=(16384, n_muscles)
            )
            for b0 in range(0, n_times, block):
                b1 = min(b0 + block, n_times)
                ds[b0:b1] = np.abs(rng.standard_normal((b1 - b0, n_muscles), dtype=np.float32))
        return None
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_times, n_muscles))
    for b0 in range(0, n_times, block):
        b1 = min(b0 + block, n_times)
        mm[b0:b1] = np.abs(rng.standard_normal((b1 - b0, n_muscles), dtype=np.float32))
    mm.flush()
    del mm
    return None


def part_long(args: argparse.Namespace) -> None:
    from nwb_synergy import EMG
    from nwb_synergy.sta import LazySweeps, spike_triggered_average

    rate, n_muscles, n_spikes = 5000.0, 32, args.spikes
    n_times = int(args.hours * 3600 * rate)
    size_gb = n_times * n_muscles * 4 / 1e9
    print(
        f"\nPart 2: {n_spikes:,} spikes x {n_muscles} muscles, {args.hours:g} h at {rate:g} Hz "
        f"({size_gb:.1f} GB float32, {args.backend})"
    )
    with tempfile.TemporaryDirectory(dir=args.tmpdir) as tmp:
        path = os.path.join(tmp, "emg.h5" if args.backend == "h5py" else "emg.npy")
        t0 = time.perf_counter()
        # in a child process, so that this process's peak RSS measures the STA alone
        writer = multiprocessing.get_context("spawn").Process(
            target=_write_long, args=(path, args.backend, n_times, n_muscles, args.seed)
        )
        writer.start()
        writer.join()
        if writer.exitcode != 0:
            raise SystemExit("writing the test file failed")
        print(f"  wrote the file in {time.perf_counter() - t0:.1f} s")
        rng = np.random.default_rng(args.seed + 1)
        spikes = np.sort(rng.uniform(0, n_times / rate, n_spikes))
        handle = None
        if args.backend == "h5py":
            import h5py

            handle = h5py.File(path, "r")
            data = handle["emg"]
        else:
            data = np.load(path, mmap_mode="r")
        emg = EMG(data, rate=rate)
        rss0 = max_rss_mb()
        t0 = time.perf_counter()
        sta, peak = peak_memory(lambda: spike_triggered_average(emg, spikes))
        elapsed = time.perf_counter() - t0
        rss_growth = max_rss_mb() - rss0
        print(
            f"  ours: {elapsed:.1f} s ({n_spikes / elapsed:,.0f} spikes/s), tracemalloc peak "
            f"{peak:.1f} MB, peak RSS growth {rss_growth:.0f} MB"
        )
        print(
            f"  n_used={sta.n_used}, n_unused={sta.n_unused}, sweeps: "
            f"{'lazy' if isinstance(sta.sweeps, LazySweeps) else type(sta.sweeps).__name__} "
            f"{sta.sweeps.shape if sta.sweeps is not None else ''}"
        )
        if args.effects:
            from nwb_synergy.sta import post_spike_effects

            t0 = time.perf_counter()
            table, peak = peak_memory(lambda: post_spike_effects(sta))
            elapsed = time.perf_counter() - t0
            print(
                f"  post_spike_effects (ISA, {table['n_fragments'].iloc[0]} fragments): "
                f"{elapsed:.1f} s, tracemalloc peak {peak:.1f} MB"
            )
        if args.check:
            # the first 2 minutes, in memory, against the same spikes read from disk
            stop = int(120 * rate)
            part = np.asarray(data[:stop], dtype=float)
            sub = spikes[spikes < 119.9]
            ref = spike_triggered_average(part, sub, rate=rate, keep_sweeps=False)
            got = spike_triggered_average(emg, sub, keep_sweeps=False)
            err = np.abs(got.mean - ref.mean).max()
            print(f"  check on {ref.n_used} spikes: max |disk - memory| = {err:.2g}")
        if handle is not None:
            handle.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--elephant-memory", action="store_true")
    parser.add_argument("--skip-long", action="store_true")
    parser.add_argument("--skip-elephant", action="store_true")
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--spikes", type=int, default=100_000)
    parser.add_argument("--backend", choices=["h5py", "memmap"], default="h5py")
    parser.add_argument("--tmpdir", default=None)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--effects", action="store_true", help="also time post_spike_effects")
    args = parser.parse_args()
    if not args.skip_elephant:
        part_elephant(args)
    if not args.skip_long:
        part_long(args)


if __name__ == "__main__":
    main()
