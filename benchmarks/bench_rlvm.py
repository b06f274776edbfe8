"""Benchmark: our batched RLVM restarts against a plain PyTorch L-BFGS loop, one restart at a time.

In one process, on simulated EMG envelopes of 16 muscles x 50,000 samples (4 synergies with
NegCps, 20 dB), the same model from the same 10 starting points:

* ours: the 10 restarts solved together by :func:`nwb_synergy.factorize._rlvm_core.fit_batched`
  (one batched L-BFGS run: compact-form directions, weak-Wolfe line search, the Gaussian loss
  and its gradient from sufficient statistics accumulated in one pass over time tiles);
* ours, one restart at a time (the same solver called 10 times), to separate what batching
  brings from what the loss evaluation brings;
* plain: ``torch.optim.LBFGS`` (``history_size=100``, ``line_search_fn="strong_wolfe"``,
  ``tolerance_grad=1e-7``, ``tolerance_change=1e-9``, ``max_iter=1000``) on each restart in
  turn, with the loss written the obvious way (``relu(X W1 + b1) W2 + b2`` and autograd).

Model (``--config``): ``reference`` (default) is Whiteway's (tied weights, Gaussian loss
``SSE / (2 T N)``, L2 1e-4 on the weights and 1e-5 on the biases, uniform random starts);
``default`` is nwb_synergy's (untied weights, NMF starts, L1 0.03 on the latents). Both get
the same iteration budget (1000) and tolerances. The data are divided by their RMS, as
``RLVM`` does. Speed only means something at equal quality, so the losses reached (best and
median over restarts) are printed with the times. The reference model is flat along rotations
of its synergies, so two solvers end at different points of equal loss; their loss
distributions are what should agree. Peak memory is the rise of the process's peak resident
set (``VmHWM``, reset through ``/proc/self/clear_refs``) during each run; memory that an earlier
run freed but the allocator kept is reused without a rise, so the runs are ordered ours first
(measured on a clean process), and the later ones may be understated.

Run: ``python benchmarks/bench_rlvm.py [--config reference|default] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from nwb_synergy.factorize import _rlvm_core as core
from nwb_synergy.simulate import simulate_synergies


def _rss_kb(field: str) -> int | None:
    status = Path("/proc/self/status")
    if not status.exists():
        return None
    for line in status.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def peak_rise_mb(fn: Callable[[], object]) -> tuple[object, float]:
    """Run ``fn`` and return its result and the rise of the peak RSS (MB) during the call."""
    clear = Path("/proc/self/clear_refs")
    try:
        clear.write_text("5")  # reset the peak (VmHWM) to the current RSS
        base = _rss_kb("VmRSS")
    except OSError:
        base = None
    out = fn()
    peak = _rss_kb("VmHWM")
    if base is None or peak is None:
        return out, float("nan")
    return out, (peak - base) / 1024.0


def plain_lbfgs(
    x: np.ndarray, x0: np.ndarray, k: int, *, tied: bool, l1: float, max_iter: int
) -> dict:
    """torch.optim.LBFGS on each restart in turn; the loss through autograd."""
    t, n = x.shape
    nk = n * k
    xt = torch.tensor(x)
    losses, iters, evals = [], [], []
    for row in x0:
        p = torch.tensor(row).clone().requires_grad_(True)
        opt = torch.optim.LBFGS(
            [p],
            lr=1.0,
            max_iter=max_iter,
            history_size=100,
            tolerance_grad=1e-7,
            tolerance_change=1e-9,
            line_search_fn="strong_wolfe",
        )

        def loss_fn(p: torch.Tensor = p) -> torch.Tensor:
            d = p[:nk].reshape(n, k)  # decoder W2^T
            w1, off = (d, nk) if tied else (p[nk : 2 * nk].reshape(n, k), 2 * nk)
            b1, b2 = p[off : off + k], p[off + k :]
            z = torch.relu(xt @ w1 + b1)
            pred = z @ d.T + b2
            loss = 0.5 * ((pred - xt) ** 2).sum() / (t * n)
            loss = loss + 0.5 * 1e-4 * ((w1 * w1).sum() + (d * d).sum())
            loss = loss + 0.5 * 1e-5 * ((b1 * b1).sum() + (b2 * b2).sum())
            return loss + l1 * z.sum() / t

        def closure(opt: torch.optim.LBFGS = opt, loss_fn=loss_fn) -> torch.Tensor:
            opt.zero_grad()
            loss = loss_fn()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            losses.append(float(loss_fn()))
        state = opt.state[p]
        iters.append(int(state["n_iter"]))
        evals.append(int(state["func_evals"]))
    return {"loss": np.array(losses), "n_iter": np.array(iters), "n_eval": np.array(evals)}


def ours(x: np.ndarray, x0: np.ndarray, k: int, *, tied: bool, l1: float, max_iter: int) -> dict:
    res = core.fit_batched(x, x0, k=k, tied=tied, l1=l1, max_iter=max_iter, history_size=100)
    return {"loss": res.loss, "n_iter": res.n_iter, "n_eval": res.n_eval}


def ours_one_by_one(
    x: np.ndarray, x0: np.ndarray, k: int, *, tied: bool, l1: float, max_iter: int
) -> dict:
    parts = [ours(x, x0[r : r + 1], k, tied=tied, l1=l1, max_iter=max_iter) for r in range(len(x0))]
    return {key: np.concatenate([p[key] for p in parts]) for key in ("loss", "n_iter", "n_eval")}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=["reference", "default"], default="reference")
    parser.add_argument("--n-times", type=int, default=50_000)
    parser.add_argument("--n-muscles", type=int, default=16)
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--max-iter", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-one-by-one", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    k = 4
    sim = simulate_synergies(
        n_muscles=args.n_muscles, n_synergies=k, n_times=args.n_times, random_state=args.seed
    )
    x = sim.emg.data / np.sqrt(np.mean(sim.emg.data**2))
    if args.config == "reference":
        tied, l1 = True, 0.0
        x0 = core.random_init(x.shape[1], k, args.restarts, tied=True, seed=args.seed)
    else:
        tied, l1 = False, 0.03
        x0 = core.nmf_init(x, k, args.restarts, tied=False, seed=args.seed)
        x0 = core.rotate_starts(x0, core._Layout(x.shape[1], k, False), args.seed + 1)
    print(
        f"data: {x.shape[0]} samples x {x.shape[1]} muscles, K = {k}, {args.restarts} restarts, "
        f"model: {args.config} (tied={tied}, l1={l1}), max_iter {args.max_iter}, "
        f"torch threads {args.threads}, float64"
    )
    runs = [("ours, batched", ours)]
    if not args.skip_one_by_one:
        runs.append(("ours, one at a time", ours_one_by_one))
    runs.append(("plain torch LBFGS loop", plain_lbfgs))
    table = {}
    for name, fn in runs:
        t0 = time.perf_counter()
        out, mem = peak_rise_mb(
            lambda fn=fn: fn(x, x0, k, tied=tied, l1=l1, max_iter=args.max_iter)
        )
        out["seconds"] = time.perf_counter() - t0
        out["peak_mb"] = mem
        table[name] = out
        print(
            f"{name:<24} {out['seconds']:8.1f} s   peak +{mem:7.1f} MB   "
            f"loss best {out['loss'].min():.6f} median {np.median(out['loss']):.6f}   "
            f"iterations {int(out['n_iter'].sum())} (median {int(np.median(out['n_iter']))}), "
            f"evaluations {int(out['n_eval'].sum())}"
        )
    plain = table["plain torch LBFGS loop"]
    for name, out in table.items():
        if name == "plain torch LBFGS loop":
            continue
        ratio = plain["seconds"] / out["seconds"]
        per_eval = (plain["seconds"] / plain["n_eval"].sum()) / (
            out["seconds"] / out["n_eval"].sum()
        )
        print(
            f"speed ratio plain / {name}: {ratio:.1f}x (per objective evaluation {per_eval:.1f}x); "
            f"best-loss difference {out['loss'].min() - plain['loss'].min():+.2e}, "
            f"median-loss difference {np.median(out['loss']) - np.median(plain['loss']):+.2e}"
        )
    return table


if __name__ == "__main__":
    main()
