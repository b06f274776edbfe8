"""Benchmark: CPU time and peak memory of the NegCp guard on long simulated envelopes.

The guard (:func:`nwb_synergy.negative_components` with its defaults: restart consistency and
block-bootstrap refits of the RLVM) runs on simulated EMG envelopes of 16 muscles at 100 Hz,
5 and 20 minutes long (30,000 and 120,000 samples), with 5 synergies that each carry one
NegCp of 0.3 times their largest weight, at 20 dB (:func:`~nwb_synergy.simulate_synergies`).
The RLVM is fitted first with a fixed L1 weight of 0.1 (what ``l1="auto"`` picks on such data,
see :class:`~nwb_synergy.RLVM`); only the guard is measured:

* CPU time: ``time.process_time()`` (all threads of the process) around the call;
* wall time: ``time.perf_counter()``;
* peak memory: the rise of the process's peak resident set during the call (``VmHWM``, reset
  through ``/proc/self/clear_refs``; it counts PyTorch's buffers, which ``tracemalloc`` does not
  see), measured by :func:`bench_rlvm.peak_rise_mb`.

Each size runs in a fresh process (``--one MINUTES``), so that memory freed by an earlier run
does not hide a later one's peak. The table also shows the candidates and NegCps flagged
against the planted ones, the refits run, and precision/recall of the flags.

Measured on a shared 2-core machine (one torch thread), guard CPU time / peak memory rise:

=========  ==========================================  ================================
envelope   before (50 refits from rotated starts,       after (Hessian-preconditioned
           1000 L-BFGS iterations each, count p-value)  warm starts, rotated restarts,
                                                        Wald p, BH, refits until clear)
=========  ==========================================  ================================
5 min      106.7 s, 95 MB; 3 of 5 planted NegCps         6.7 s, 136 MB; 5 of 5 (+1 false)
20 min     267.3 s, 204 MB; 5 of 5                       14.6 s, 121 MB; 5 of 5
=========  ==========================================  ================================

(The false NegCp at 5 min is a weight the RLVM estimates at -0.125 of its synergy's largest
weight, with the truth 0, in every refit and restart: a bias of the estimator, which no
resampling test can see.)

Run: ``python benchmarks/bench_negcp.py [--minutes 5 20] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RATE = 100.0
N_MUSCLES = 16
N_SYNERGIES = 5


def run_one(minutes: float, seed: int, threads: int) -> dict:
    """Fit, then time the guard, on one simulated envelope; a JSON-able record."""
    import torch
    from bench_rlvm import peak_rise_mb

    from nwb_synergy import RLVM, negative_components
    from nwb_synergy.simulate import simulate_synergies

    torch.set_num_threads(threads)
    n_times = int(round(minutes * 60 * RATE))
    sim = simulate_synergies(N_MUSCLES, N_SYNERGIES, n_times, RATE, snr_db=20.0, random_state=seed)
    t0 = time.process_time()
    model = RLVM(N_SYNERGIES, l1=0.1, random_state=seed, n_threads=threads).fit(sim.emg)
    fit_cpu = time.process_time() - t0

    def guard():
        c0, w0 = time.process_time(), time.perf_counter()
        res = negative_components(model, sim.emg, random_state=seed)
        return res, time.process_time() - c0, time.perf_counter() - w0

    (res, cpu, wall), peak = peak_rise_mb(guard)
    from nwb_synergy.compare import compare_synergies

    pairs = compare_synergies(sim.weights, model.weights_).pairs
    truth = sim.negative_mask[:, pairs[:, 0]]
    found = np.asarray(res.mask)[:, pairs[:, 1]]
    n_refits = getattr(res, "n_refits", None)
    if n_refits is None:
        n_refits = res.n_boot
    return {
        "minutes": minutes,
        "n_times": n_times,
        "fit_cpu_s": fit_cpu,
        "guard_cpu_s": cpu,
        "guard_wall_s": wall,
        "peak_mb": peak,
        "candidates": int(np.sum(res.candidates)),
        "flagged": int(np.sum(res.mask)),
        "true_flagged": int(np.sum(found & truth)),
        "planted": int(truth.sum()),
        "refits": int(n_refits),
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[5.0, 20.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--one", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(run_one(args.one, args.seed, args.threads)))
        return []
    rows = []
    for minutes in args.minutes:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--one", str(minutes)]
        cmd += ["--seed", str(args.seed), "--threads", str(args.threads)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    print(
        f"NegCp guard, defaults; {N_MUSCLES} muscles x {N_SYNERGIES} synergies at {RATE:g} Hz, "
        f"20 dB, seed {args.seed}, torch threads {args.threads}"
    )
    head = (
        f"{'min':>4} {'samples':>8} {'fit CPU s':>9} {'guard CPU s':>11} {'wall s':>7} "
        f"{'peak MB':>8} {'refits':>6} {'cand':>5} {'flagged':>7} {'true/planted':>12}"
    )
    print(head)
    for r in rows:
        print(
            f"{r['minutes']:>4g} {r['n_times']:>8d} {r['fit_cpu_s']:>9.1f} "
            f"{r['guard_cpu_s']:>11.1f} {r['guard_wall_s']:>7.1f} {r['peak_mb']:>8.0f} "
            f"{r['refits']:>6d} {r['candidates']:>5d} {r['flagged']:>7d} "
            f"{r['true_flagged']:>5d}/{r['planted']:<6d}"
        )
    return rows


if __name__ == "__main__":
    main()
