"""Full-default analysis of simulated sessions of growing length: CPU time and peak memory.

For each session length (default 5, 20 and 60 minutes; 16 muscles at 2 kHz, 20 units) a
session is simulated into a temporary NWB file (in its own process), then analysed with the
full defaults of :func:`~nwb_synergy.analyze_session` in a fresh process, which records for
every step its CPU time (user + system, all threads) and its peak resident memory (the kernel's
high-water mark, reset before each step through ``/proc/self/clear_refs``). The table compares
each peak with the raw recording's float64 size, and scores the synergies against the truth in
conditioned units (see :func:`nwb_synergy.demo.score_against_truth`).

Run::

    python benchmarks/bench_pipeline.py                  # 5, 20, 60 minutes
    python benchmarks/bench_pipeline.py --minutes 3 20 --muscles 32
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _status_mb(field: str) -> float:
    """A memory line of /proc/self/status (``VmHWM``: peak resident, ``VmRSS``: now), MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the resident-set high-water mark (Linux)
    except OSError:
        pass


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def simulate(path: str, minutes: float, muscles: int, units: int, seed: int) -> None:
    """Write the session and pickle its truth next to it."""
    import pickle

    from nwb_synergy.simulate.session import simulate_session

    session = simulate_session(
        path,
        duration=60.0 * minutes,
        n_muscles=muscles,
        n_units=units,
        random_state=seed,
        overwrite=True,
    )
    session.nwbfile = None
    with open(path + ".truth.pkl", "wb") as f:
        pickle.dump(session, f)


def analyse(path: str, seed: int, options: dict) -> dict:
    """Run analyze_session in this process: per-step CPU, wall and peak RSS, scores."""
    import pickle

    from nwb_synergy import pipeline
    from nwb_synergy.demo import score_against_truth

    steps: dict[str, dict[str, float]] = {}
    original = pipeline._Progress.run

    def run(self, label, func, *args):
        _reset_peak()
        c0, w0 = _cpu(), time.perf_counter()
        out = original(self, label, func, *args)
        steps[label] = {
            "cpu_s": _cpu() - c0,
            "wall_s": time.perf_counter() - w0,
            "peak_mb": _status_mb("VmHWM"),
        }
        return out

    pipeline._Progress.run = run
    import nwb_synergy.factorize._rlvm_core as core

    core._torch()  # the libraries every analysis loads, so that the baseline includes them
    baseline = _status_mb("VmRSS")
    out_path = str(Path(path).with_name("results.nwb"))
    c0 = _cpu()
    results = pipeline.analyze_session(
        path, out_path, overwrite=True, progress=False, random_state=seed, **options
    )
    total = _cpu() - c0
    with open(path + ".truth.pkl", "rb") as f:
        session = pickle.load(f)
    scores = score_against_truth(session, results)
    summary = {m: {k: v for k, v in scores[m].items() if k != "pairs"} for m in results.models}
    neg = scores["negcp"]
    f1 = 2 * neg["correct"] / max(1, neg["found"] + neg["planted"])
    return {
        "steps": steps,
        "cpu_s": total,
        "baseline_mb": baseline,
        "scores": summary,
        "negcp": neg,
        "negcp_f1": f1,
        "notes": results.notes,
    }


def _child(args: argparse.Namespace) -> None:
    if args.child == "simulate":
        simulate(args.path, args.child_minutes, args.muscles, args.units, args.seed)
        return
    out = analyse(args.path, args.seed, json.loads(args.options))
    print("RESULT " + json.dumps(out))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[5.0, 20.0, 60.0])
    parser.add_argument("--muscles", type=int, default=16)
    parser.add_argument("--units", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--options", default="{}", help="analyze_session options, JSON")
    parser.add_argument("--child", choices=("simulate", "analyse"), help=argparse.SUPPRESS)
    parser.add_argument("--child-minutes", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return
    for minutes in args.minutes:
        with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as tmp:
            path = str(Path(tmp) / "session.nwb")
            base = [
                sys.executable,
                __file__,
                "--muscles",
                str(args.muscles),
                "--units",
                str(args.units),
                "--seed",
                str(args.seed),
                "--path",
                path,
                "--child-minutes",
                str(minutes),
            ]
            subprocess.run(base + ["--child", "simulate"], check=True)
            done = subprocess.run(
                base + ["--child", "analyse", "--options", args.options],
                check=True,
                capture_output=True,
                text=True,
            )
            line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
            result = json.loads(line[len("RESULT ") :])
        raw_mb = 60.0 * minutes * 2000.0 * args.muscles * 8 / 2**20
        _print_row(minutes, raw_mb, result)


#: the memory target: peak RSS under this share of the raw float64 size plus FIXED_MB
RAW_SHARE = 0.25
FIXED_MB = 600.0


def _print_row(minutes: float, raw_mb: float, result: dict) -> None:
    steps = result["steps"]
    peak = max(s["peak_mb"] for s in steps.values())
    limit = RAW_SHARE * raw_mb + FIXED_MB
    print(
        f"\n{minutes:g} min, raw EMG {raw_mb:.0f} MB as float64: CPU {result['cpu_s']:.1f} s, "
        f"peak RSS {peak:.0f} MB (libraries loaded: {result['baseline_mb']:.0f} MB; target "
        f"{RAW_SHARE:g} x raw + {FIXED_MB:.0f} = {limit:.0f} MB: "
        f"{'met' if peak <= limit else 'MISSED'})"
    )
    print(f"  {'step':<14}{'CPU s':>8}{'wall s':>8}{'peak MB':>9}")
    for label, s in steps.items():
        print(f"  {label:<14}{s['cpu_s']:>8.1f}{s['wall_s']:>8.1f}{s['peak_mb']:>9.0f}")
    for method, sc in result["scores"].items():
        print(
            f"  {method.upper()}: K = {sc['k']}, matched cosine {sc['matched_cosine']:.3f}, "
            f"subspace {sc['subspace_similarity']:.3f} (conditioned units)"
        )
    neg = result["negcp"]
    print(
        f"  NegCps: {neg['found']} found, {neg['correct']} correct, {neg['planted']} planted "
        f"(F1 {result['negcp_f1']:.2f})"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
