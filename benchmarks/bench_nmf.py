"""Benchmark: our batched NMF against scikit-learn's NMF run once per restart.

In one process, on simulated EMG envelopes of 16 muscles x 50,000 samples (4 synergies, 20 dB):

* ours: ``NMF(4, n_restarts=10)`` (HALS, restarts updated together, musclesyneRgies's stopping
  rule: R^2 gains < 0.01 % over 20 iterations, at most 1000 iterations);
* scikit-learn: ``sklearn.decomposition.NMF(4, init="random", tol=1e-4, max_iter=1000)`` fitted
  10 times with seeds 0..9, keeping the best, with the coordinate-descent solver ("cd", its
  default and fastest) and with multiplicative updates ("mu").

Both are timed with BLAS limited to one thread (ours does so itself; scikit-learn is wrapped in
``threadpool_limits``) and scikit-learn also with the default threads. The ratio is only
meaningful at equal fit, so the best uncentered VAF of each is printed next to its time. Peak
memory is the tracemalloc peak of Python and NumPy allocations during the call.

Repeats are interleaved and the best wall and CPU times of each method kept.

Run: ``python benchmarks/bench_nmf.py [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from nwb_synergy.factorize.metrics import vaf
from nwb_synergy.factorize.nmf import NMF
from nwb_synergy.simulate import simulate_synergies


def peak_memory(fn: Callable[[], float]) -> float:
    """tracemalloc peak (MB) of Python and NumPy allocations during ``fn()``."""
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-times", type=int, default=50_000)
    parser.add_argument("--n-muscles", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from sklearn.decomposition import NMF as SkNMF
    from threadpoolctl import threadpool_limits

    sim = simulate_synergies(
        n_muscles=args.n_muscles,
        n_synergies=4,
        n_times=args.n_times,
        negative=False,
        random_state=args.seed,
    )
    x = np.ascontiguousarray(sim.emg.data)
    print(f"data: {x.shape[0]} samples x {x.shape[1]} muscles, K = 4, 10 restarts")

    def ours(solver: str) -> Callable[[], float]:
        def run() -> float:
            return NMF(4, solver=solver, n_restarts=10, random_state=0).fit(x).vaf_

        return run

    def sklearn(solver: str, limit: bool) -> Callable[[], float]:
        def run() -> float:
            best = -np.inf
            ctx = threadpool_limits(1, user_api="blas") if limit else _null()
            with ctx:
                for seed in range(10):
                    model = SkNMF(
                        4, init="random", solver=solver, tol=1e-4, max_iter=1000, random_state=seed
                    )
                    h = model.fit_transform(x)
                    best = max(best, vaf(x, h @ model.components_))
            return best

        return run

    rows = [
        ("ours HALS (10 restarts batched)", ours("hals")),
        ("ours MU   (10 restarts batched)", ours("mu")),
        ("sklearn cd x10 (1 BLAS thread)", sklearn("cd", True)),
        ("sklearn cd x10 (default threads)", sklearn("cd", False)),
        ("sklearn mu x10 (1 BLAS thread)", sklearn("mu", True)),
    ]
    # interleave the repeats so that a change of machine load hits every method alike;
    # keep each method's best wall time and best CPU time
    wall = {name: np.inf for name, _ in rows}
    cpu = {name: np.inf for name, _ in rows}
    fit = {}
    for _ in range(args.repeats):
        for name, fn in rows:
            t0, c0 = time.perf_counter(), time.process_time()
            fit[name] = fn()
            wall[name] = min(wall[name], time.perf_counter() - t0)
            cpu[name] = min(cpu[name], time.process_time() - c0)
    mem = {name: peak_memory(fn) for name, fn in rows}
    print(f"{'method':36s} {'wall (s)':>9s} {'CPU (s)':>8s} {'peak MB':>8s} {'best VAF':>10s}")
    for name, _ in rows:
        print(f"{name:36s} {wall[name]:9.3f} {cpu[name]:8.3f} {mem[name]:8.1f} {fit[name]:10.6f}")

    def ratio(ref: str, test: str) -> None:
        print(
            f"{test.split('(')[0].strip()} vs {ref}: {wall[ref] / wall[test]:.1f}x wall, "
            f"{cpu[ref] / cpu[test]:.1f}x CPU (VAF difference {fit[test] - fit[ref]:+.1e})"
        )

    ours_hals, ours_mu, sk_cd1, sk_cd, sk_mu1 = (name for name, _ in rows)
    ratio(sk_cd1, ours_hals)
    ratio(sk_cd, ours_hals)
    ratio(sk_mu1, ours_mu)


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    main()
