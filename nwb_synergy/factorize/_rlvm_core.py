"""Numerical core of the RLVM (PyTorch): objective, starting points, batched fits.

Imported only by :mod:`nwb_synergy.factorize.rlvm` (so ``import nwb_synergy`` stays free of
torch). Every function here works on data already scaled and returns NumPy arrays.

Parameter packing (one row per problem): the decoder D = W2^T (N, K) flattened, then (untied
only) the encoder W1 (N, K), then b1 (K,), then b2 (N,). The reconstruction is
``relu(X W1 + b1) D^T + b2``.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..compare import match_columns
from ..errors import InputError
from ..progress import progress


def _torch():
    import torch

    return torch


def _resolve_device(device: Any):
    torch = _torch()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise InputError(f"unknown device {device!r}: {err}", obj="device") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            "device='cuda' asked for but PyTorch sees no CUDA GPU on this machine "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'}); "
            "use device='cpu'",
            obj="device",
        )
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"device must be 'cpu' or 'cuda', got {device!r}", obj="device")
    return dev


@contextmanager
def torch_threads(n_threads: int | None):
    """Run with ``n_threads`` PyTorch intra-op threads (None: leave the setting), then restore."""
    torch = _torch()
    if n_threads is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _resolve_dtype(dtype: Any):
    torch = _torch()
    table = {
        "float32": torch.float32,
        "float64": torch.float64,
        torch.float32: torch.float32,
        torch.float64: torch.float64,
        np.float32: torch.float32,
        np.float64: torch.float64,
    }
    try:
        return table[dtype]
    except (KeyError, TypeError):
        raise InputError(
            f"dtype must be 'float32' or 'float64', got {dtype!r}", obj="dtype"
        ) from None


# ----------------------------------------------------------------------------------------------
# the objective, batched over problems (restarts x penalty values)
# ----------------------------------------------------------------------------------------------
@dataclass
class _Layout:
    n_muscles: int
    k: int
    tied: bool

    def unpack(self, x):
        """Views of x (r, P): encoder W1 (r, N, K), decoder D (r, N, K), b1 (r, K), b2 (r, N).

        The decoder matrix D is ``W2^T``: the reconstruction is ``Z D^T + b2``.
        """
        n, k = self.n_muscles, self.k
        r = x.shape[0]
        nk = n * k
        d = x[:, :nk].reshape(r, n, k)
        if self.tied:
            w1, off = d, nk
        else:
            w1, off = x[:, nk : 2 * nk].reshape(r, n, k), 2 * nk
        b1 = x[:, off : off + k]
        b2 = x[:, off + k : off + k + n]
        return w1, d, b1, b2

    def pack(self, w1, d, b1, b2):
        torch = _torch()
        r = d.shape[0]
        parts = [d.reshape(r, -1)]
        if not self.tied:
            parts.append(w1.reshape(r, -1))
        parts += [b1.reshape(r, -1), b2.reshape(r, -1)]
        return torch.cat(parts, dim=1)


class _Objective:
    """Penalised loss of the RLVM for a batch of parameter vectors on one data set.

    Gaussian loss: ``SSE / (2 T N)``, computed from sufficient statistics (``Z^T Z``, ``X^T Z``,
    column sums) so that no (T, N) reconstruction is formed. Poisson loss:
    ``sum(mu - X log mu) / sum(X)`` with ``mu = softplus(Z W2 + b2)``.
    Penalties: ``0.5 * l2_weights * (|W1|^2 + |W2|^2)`` (tied: ``l2_weights * |W|^2``),
    ``0.5 * l2_biases * (|b1|^2 + |b2|^2)``, ``l1[p] * sum(Z) / T`` for problem p.
    """

    def __init__(
        self,
        x,
        layout: _Layout,
        *,
        loss: str,
        l2_weights: float,
        l2_biases: float,
        l1,
        sample_weight=None,
        tile_elems: int = 1 << 15,
    ):
        torch = _torch()
        #: elements (problems x K x samples) per time tile of the Gaussian pass
        self.tile_elems = int(tile_elems)
        self.torch = torch
        self.x = x  # (T, N) tensor
        self.layout = layout
        self.loss = loss
        self.l2w = float(l2_weights)
        self.l2b = float(l2_biases)
        self.l1 = l1  # (n_problems,) tensor, same dtype/device as x
        self.xt = x.T.contiguous()
        self.x1 = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
        x64 = x.double()
        # per-problem sample weights (n_problems, T): resamples and cross-validation folds
        self.sw = sample_weight
        if sample_weight is None:
            self.n_times = float(x.shape[0])
            self.xx = float((x64 * x64).sum())
            self.xsum = x64.sum(dim=0)  # (N,) float64
            total = float(x64.sum())
        else:
            sw64 = sample_weight.double()
            self.n_times = sw64.sum(dim=1)  # (n_problems,)
            self.xx = sw64 @ (x64 * x64).sum(dim=1)  # (n_problems,)
            self.xsum = sw64 @ x64  # (n_problems, N)
            total = sw64 @ x64.sum(dim=1)
        if loss == "poisson":
            self.norm = total
            if bool(np.any(np.asarray(total if sample_weight is None else total.cpu()) <= 0)):
                raise InputError("Poisson loss needs data with a positive sum", obj="emg")

    def latents(self, w1, b1):
        """Z = relu(X W1 + b1), (r, T, K)."""
        return self.torch.relu(self.torch.matmul(self.x, w1) + b1[:, None, :])

    def value(self, params, idx):
        """Penalised loss of every row of ``params`` (problems ``idx``), (r,)."""
        torch = self.torch
        w1, d, b1, b2 = self.layout.unpack(params)
        n = self.layout.n_muscles
        z = self.latents(w1, b1)
        if self.sw is None:
            zw = z
            t = self.n_times
            xx, xsum = self.xx, self.xsum
        else:
            sw = self.sw[idx.to(self.sw.device)]  # (r, T)
            zw = z * sw[:, :, None]
            t = self.n_times[idx.to(self.n_times.device)]
            xx, xsum = self.xx[idx.to(self.xx.device)], self.xsum[idx.to(self.xsum.device)]
        zsum = zw.sum(dim=1)  # (r, K)
        if self.loss == "gaussian":
            gram = torch.bmm(zw.transpose(1, 2), z).double()  # (r, K, K)
            cross = torch.matmul(self.xt, zw).double()  # (r, N, K) = X^T Z
            d64, b64, zs64 = d.double(), b2.double(), zsum.double()
            dz = torch.bmm(d64, zs64.unsqueeze(2)).squeeze(2)  # (r, N) = D sum(Z)
            sse = (
                xx
                - 2.0 * (d64 * cross).sum(dim=(1, 2))
                + (torch.bmm(d64, gram) * d64).sum(dim=(1, 2))
                - 2.0 * (b64 * xsum).sum(dim=-1)
                + 2.0 * (b64 * dz).sum(dim=1)
                + t * (b64 * b64).sum(dim=1)
            )
            data = (sse / (2.0 * t * n)).to(params.dtype)
        else:
            eta = torch.matmul(z, d.transpose(1, 2)) + b2[:, None, :]
            mu = torch.nn.functional.softplus(eta)
            nll = mu - self.x * torch.log(mu + 1e-10)
            if self.sw is not None:
                nll = nll * sw[:, :, None]
            norm = self.norm if self.sw is None else self.norm[idx.to(self.norm.device)]
            data = (nll.sum(dim=(1, 2)) / norm).to(params.dtype)
        if self.layout.tied:
            pen_w = self.l2w * (d * d).sum(dim=(1, 2))
        else:
            pen_w = 0.5 * self.l2w * ((w1 * w1).sum(dim=(1, 2)) + (d * d).sum(dim=(1, 2)))
        pen_b = 0.5 * self.l2b * ((b1 * b1).sum(dim=1) + (b2 * b2).sum(dim=1))
        t_p = t if self.sw is None else t.to(params.dtype)
        pen_l1 = self.l1[idx.to(self.l1.device)] * zsum.sum(dim=1) / t_p
        return data + pen_w + pen_b + pen_l1

    def __call__(self, params, idx):
        """Loss (r,) and gradient (r, P): analytic for the Gaussian loss, autograd otherwise."""
        torch = self.torch
        if self.loss == "gaussian":
            return self._gaussian(params, idx)
        with torch.enable_grad():
            p = params.detach().requires_grad_(True)
            f = self.value(p, idx)
            (g,) = torch.autograd.grad(f.sum(), p)
        return f.detach(), g

    def _gaussian(self, params, idx):
        """Gaussian loss and its gradient by hand (the same numbers as autograd of ``value``).

        With R = Z D^T + b2 - X the residual, the gradients need only (K, T) arrays per problem:
        ``dL/dZ = sw * (Z D^T D + b2^T D - X D) / (T N) + l1 sw / T``, then through the ReLU
        ``dL/dA = dL/dZ * (A > 0)``, ``dL/dW1 = X^T dL/dA``, ``dL/db1 = sum_t dL/dA``;
        ``dL/dD = (D Z^T Z - X^T Z + b2 sum(Z)^T) / (T N)``, ``dL/db2 = (D sum(Z) + T b2 -
        sum(X)) / (T N)``. Everything that depends on time is accumulated in one pass over
        tiles of samples (so the working set stays in cache): ``Z^T Z``, ``Z^T [X, 1]`` (which
        holds ``X^T Z`` and ``sum(Z)``) and ``dL/dA^T [X, 1]`` (which holds ``dL/dW1`` and
        ``dL/db1``). Arrays are laid out (problem x K, time) so that all problems share one
        matrix product with the data.
        """
        torch = self.torch
        lay = self.layout
        w1, d, b1, b2 = lay.unpack(params)
        n, k = lay.n_muscles, lay.k
        r = params.shape[0]
        n_t = self.x.shape[0]
        rk = r * k
        if self.sw is None:
            sw_all = None
            t = self.n_times
            t_r = torch.full((r,), t, dtype=params.dtype, device=params.device)
            xx, xsum = self.xx, self.xsum
        else:
            dev_idx = idx.to(self.sw.device)
            sw_all = self.sw[dev_idx]  # (r, T)
            t = self.n_times[dev_idx]
            t_r = t.to(params.dtype)
            xx, xsum = self.xx[dev_idx], self.xsum[dev_idx]
        scale = 1.0 / (t_r * n)  # (r,)
        l1 = self.l1[idx.to(self.l1.device)]
        # what the pass over time needs: encoder, and dL/dZ^T = M X^T + bias + DtD Z^T
        enc = w1.transpose(1, 2).reshape(rk, n)
        enc_b = b1.reshape(rk, 1)
        sd = d * scale[:, None, None]
        dtd = torch.bmm(sd.transpose(1, 2), d)  # (r, K, K), scaled, symmetric
        m_x = -sd.transpose(1, 2).reshape(rk, n)
        g_bias = torch.bmm(sd.transpose(1, 2), b2.unsqueeze(2)).squeeze(2) + (l1 / t_r)[:, None]
        g_bias = g_bias.reshape(rk, 1)
        gram = torch.zeros((r, k, k), dtype=params.dtype, device=params.device)
        cz = torch.zeros((rk, n + 1), dtype=params.dtype, device=params.device)
        gx = torch.zeros_like(cz)
        tile = max(256, self.tile_elems // max(rk, 1))
        for start in range(0, n_t, tile):
            stop = min(n_t, start + tile)
            width = stop - start
            xt = self.xt[:, start:stop]  # (N, width)
            x1 = self.x1[start:stop]  # (width, N + 1)
            a = torch.addmm(enc_b, enc, xt)  # A^T (rK, width)
            z = torch.relu(a)
            z3 = z.view(r, k, width)
            gz = torch.addmm(g_bias, m_x, xt)
            gz = torch.baddbmm(gz.view(r, k, width), dtd, z3).view(rk, width)
            if sw_all is None:
                gram.baddbmm_(z3, z3.transpose(1, 2))
                cz.addmm_(z, x1)
            else:
                sw = sw_all[:, start:stop].repeat_interleave(k, dim=0)  # (rK, width)
                zw = z * sw
                gram.baddbmm_(zw.view(r, k, width), z3.transpose(1, 2))
                cz.addmm_(zw, x1)
                gz = gz * sw
            ga = torch.ops.aten.threshold_backward(gz, a, 0.0)  # gz where a > 0, else 0
            gx.addmm_(ga, x1)
        cz = cz.view(r, k, n + 1)
        gx = gx.view(r, k, n + 1)
        cross = cz[:, :, :n].transpose(1, 2)  # (r, N, K) = X^T Z
        zsum = cz[:, :, n]  # (r, K)
        d64, b64, zs64 = d.double(), b2.double(), zsum.double()
        dz = torch.bmm(d64, zs64.unsqueeze(2)).squeeze(2)  # (r, N) = D sum(Z)
        sse = (
            xx
            - 2.0 * (d64 * cross.double()).sum(dim=(1, 2))
            + (torch.bmm(d64, gram.double()) * d64).sum(dim=(1, 2))
            - 2.0 * (b64 * xsum).sum(dim=-1)
            + 2.0 * (b64 * dz).sum(dim=1)
            + t * (b64 * b64).sum(dim=1)
        )
        f = (sse / (2.0 * t * n)).to(params.dtype) + l1 * zsum.sum(dim=1) / t_r
        g_w1 = gx[:, :, :n].transpose(1, 2)  # (r, N, K)
        g_b1 = gx[:, :, n]
        g_d = (torch.bmm(d, gram) - cross + b2.unsqueeze(2) * zsum.unsqueeze(1)) * scale[
            :, None, None
        ]
        g_b2 = (dz.to(params.dtype) + t_r[:, None] * b2 - xsum.to(params.dtype)) * scale[:, None]
        # penalties
        if lay.tied:
            f = f + self.l2w * (d * d).sum(dim=(1, 2))
            g_d = g_d + g_w1 + 2.0 * self.l2w * d
            g_w1 = g_d
        else:
            f = f + 0.5 * self.l2w * ((w1 * w1).sum(dim=(1, 2)) + (d * d).sum(dim=(1, 2)))
            g_d = g_d + self.l2w * d
            g_w1 = g_w1 + self.l2w * w1
        f = f + 0.5 * self.l2b * ((b1 * b1).sum(dim=1) + (b2 * b2).sum(dim=1))
        g_b1 = g_b1 + self.l2b * b1
        g_b2 = g_b2 + self.l2b * b2
        return f, lay.pack(g_w1, g_d, g_b1, g_b2)


# ----------------------------------------------------------------------------------------------
# initialisation
# ----------------------------------------------------------------------------------------------
def _seed(random_state: Any) -> int:
    return int(np.random.default_rng(random_state).integers(0, 2**62))


def random_init(n_muscles: int, k: int, n_restarts: int, *, tied: bool, seed: int) -> np.ndarray:
    """Whiteway's initialisation: weights uniform in ``+-4 sqrt(6) / sqrt(N + K + 1)``, biases 0.

    Drawn with a seeded torch generator on the CPU in float64, restart after restart (restart r
    of a batch gets the r-th draws of the stream), so the start does not depend on the device.

    Returns
    -------
    ndarray (n_restarts, n_params)
    """
    torch = _torch()
    layout = _Layout(n_muscles, k, tied)
    gen = torch.Generator().manual_seed(int(seed))
    bound = 4.0 * math.sqrt(6.0) / math.sqrt(n_muscles + k + 1)
    rows = []
    for _ in range(n_restarts):
        d = (torch.rand((1, n_muscles, k), generator=gen, dtype=torch.float64) * 2 - 1) * bound
        if tied:
            w1 = d
        else:
            w1 = (torch.rand((1, n_muscles, k), generator=gen, dtype=torch.float64) * 2 - 1) * bound
        b1 = torch.zeros((1, k), dtype=torch.float64)
        b2 = torch.zeros((1, n_muscles), dtype=torch.float64)
        rows.append(layout.pack(w1, d, b1, b2))
    return torch.cat(rows).numpy()


def nmf_init(x: np.ndarray, k: int, n_restarts: int, *, tied: bool, seed: int) -> np.ndarray:
    """Warm start from NMF restarts (one NMF restart per RLVM restart).

    The offset starts at each muscle's 2nd percentile (its floor), NMF factorizes what lies
    above it, the decoder starts at the NMF weights (unit norm) and the encoder at their
    pseudo-inverse applied to the data above the floor (tied weights: the decoder itself).

    Returns
    -------
    ndarray (n_restarts, n_params)
    """
    from .nmf import nmf_batched

    n_muscles = x.shape[1]
    floor = np.percentile(x, 2.0, axis=0)
    above = np.clip(x - floor, 0.0, None)
    w = nmf_batched(above, k, n_restarts=n_restarts, rng=np.random.default_rng(seed))[0]
    layout = _Layout(n_muscles, k, tied)
    torch = _torch()
    rows = []
    for r in range(n_restarts):
        norms = np.linalg.norm(w[r], axis=0)
        d = w[r] / np.where(norms > 0, norms, 1.0)
        w1 = d if tied else np.linalg.pinv(d).T
        b1 = -floor @ w1
        parts = [np.ascontiguousarray(a, dtype=float) for a in (w1, d, b1, floor)]
        rows.append(layout.pack(*[torch.from_numpy(a)[None] for a in parts]))
    return torch.cat(rows).numpy()


# ----------------------------------------------------------------------------------------------
# fitting many problems at once
# ----------------------------------------------------------------------------------------------
@dataclass
class BatchFit:
    """Result of :func:`fit_batched`: every problem's final parameters and loss."""

    params: np.ndarray  # (n_problems, P) float64
    loss: np.ndarray  # (n_problems,)
    n_iter: np.ndarray
    n_eval: np.ndarray
    reason: list[str]
    memory: Any = None  # LBFGSMemory of the run, to continue along a path


def fit_batched(
    x: np.ndarray,
    x0: np.ndarray,
    *,
    k: int,
    tied: bool,
    loss: str = "gaussian",
    l2_weights: float = 1e-4,
    l2_biases: float = 1e-5,
    l1: np.ndarray | float = 0.0,
    max_iter: int = 1000,
    history_size: int = 100,
    tol_grad: float = 1e-7,
    tol_change: float = 1e-9,
    sample_weight: np.ndarray | None = None,
    device: Any = "cpu",
    dtype: Any = "float64",
    memory: Any = None,
) -> BatchFit:
    """Fit RLVMs from the starting points ``x0`` (one problem per row), all in one L-BFGS run.

    Parameters
    ----------
    x
        Data (T, N), already scaled.
    x0
        Starting parameters (n_problems, P) (see :class:`_Layout` for the packing).
    l1
        L1 weight on the latents, one per problem (n_problems,) or a scalar.
    sample_weight
        Optional weight of every sample for every problem (n_problems, T): counts of a
        resample, or 0/1 masks of cross-validation folds. The loss of a problem is then the
        loss of the weighted data.

    Returns
    -------
    BatchFit
    """
    from ._lbfgs import lbfgs_batched

    torch = _torch()
    dev = _resolve_device(device)
    dt = _resolve_dtype(dtype)
    layout = _Layout(x.shape[1], k, tied)
    xt = torch.as_tensor(np.ascontiguousarray(x), dtype=dt, device=dev)
    l1v = np.array(np.broadcast_to(np.asarray(l1, dtype=float), (x0.shape[0],)))
    obj = _Objective(
        xt,
        layout,
        loss=loss,
        l2_weights=l2_weights,
        l2_biases=l2_biases,
        l1=torch.as_tensor(np.ascontiguousarray(l1v), dtype=dt, device=dev),
        sample_weight=None
        if sample_weight is None
        else torch.as_tensor(np.ascontiguousarray(sample_weight), dtype=dt, device=dev),
    )
    start = torch.as_tensor(np.ascontiguousarray(x0), dtype=dt, device=dev)
    res = lbfgs_batched(
        obj,
        start,
        max_iter=max_iter,
        history_size=history_size,
        tol_grad=tol_grad,
        tol_change=tol_change,
        memory=memory,
    )
    return BatchFit(
        params=res.x.detach().cpu().double().numpy(),
        loss=res.loss.detach().cpu().double().numpy(),
        n_iter=res.n_iter.numpy(),
        n_eval=res.n_eval.numpy(),
        reason=res.reason,
        memory=res.memory,
    )


def _split(params: np.ndarray, layout: _Layout):
    """NumPy views (W1 (N, K), D (N, K), b1 (K,), b2 (N,)) of one parameter vector."""
    torch = _torch()
    w1, d, b1, b2 = layout.unpack(torch.from_numpy(params[None]))
    return w1[0].numpy(), d[0].numpy(), b1[0].numpy(), b2[0].numpy()


def select_latents(params: np.ndarray, layout: _Layout, columns: np.ndarray) -> np.ndarray:
    """One parameter vector (P,) restricted to the latents ``columns`` (in that order).

    Returns the packed vector of a model with ``len(columns)`` latents: those columns of the
    decoder and encoder and those entries of b1, with the same b2.
    """
    torch = _torch()
    columns = np.asarray(columns, dtype=int)
    w1, d, b1, b2 = _split(np.asarray(params, dtype=float), layout)
    kept = _Layout(layout.n_muscles, int(columns.size), layout.tied)
    parts = [np.ascontiguousarray(a) for a in (w1[:, columns], d[:, columns], b1[columns], b2)]
    return kept.pack(*[torch.from_numpy(a)[None] for a in parts]).numpy()[0]


def refit_latents(
    x: np.ndarray,
    weights: np.ndarray,
    offset: np.ndarray,
    *,
    l1: float = 0.0,
    smoothness: float = 0.0,
    max_iter: int = 500,
    tol: float = 1e-7,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """Non-negative activations for fixed synergies, with L1 and smoothness penalties.

    Minimises over ``Z >= 0`` (T, K)::

        |X - Z W^T - offset|^2 / (2 T N) + l1 * sum(Z) / T + smoothness * |D2 Z|^2 / (2 T)

    with ``D2`` the second difference along time (Whiteway's ``d2t_hid`` penalty), by
    accelerated projected gradient (FISTA with adaptive restart). Convex, so the result does not
    depend on the start except through ``max_iter``.

    Parameters
    ----------
    x
        Data (T, N) in the units of ``weights`` and ``offset``.
    weights
        Fixed synergies (N, K).
    offset
        Fixed offset (N,).

    Returns
    -------
    ndarray (T, K)
    """
    x = np.asarray(x, dtype=float)
    t, n = x.shape
    w = np.asarray(weights, dtype=float)
    resid0 = x - offset
    wtw = w.T @ w / (t * n)
    xw = resid0 @ w / (t * n)
    lip = np.linalg.eigvalsh(wtw).max() + smoothness * 16.0 / t
    lip = max(lip, 1e-300)
    if start is None:
        z = np.clip(np.linalg.lstsq(w, resid0.T, rcond=None)[0].T, 0.0, None)
    else:
        z = np.array(start, dtype=float)
    y = z.copy()
    tk = 1.0

    def grad(a: np.ndarray) -> np.ndarray:
        g = a @ wtw - xw + l1 / t
        if smoothness > 0 and t > 2:
            d2 = a[2:] - 2.0 * a[1:-1] + a[:-2]
            gd = np.zeros_like(a)
            gd[2:] += d2
            gd[1:-1] -= 2.0 * d2
            gd[:-2] += d2
            g = g + smoothness * gd / t
        return g

    for _ in range(max_iter):
        z_new = np.clip(y - grad(y) / lip, 0.0, None)
        step = z_new - z
        if np.sum(step * (y - z_new)) > 0:  # adaptive restart (O'Donoghue and Candes 2015)
            tk = 1.0
        t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * tk * tk))
        y = z_new + ((tk - 1.0) / t_new) * step
        tk = t_new
        z = z_new
        top = float(np.max(np.abs(z))) if z.size else 0.0
        if float(np.max(np.abs(step))) <= tol * max(top, 1e-300):
            break
    return z


def unit_columns(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns of ``d`` (..., N, K) scaled to unit norm, and the norms (..., K)."""
    norms = np.linalg.norm(d, axis=-2)
    return d / np.where(norms > 0, norms, 1.0)[..., None, :], norms


def rotate_starts(
    x0: np.ndarray, layout: _Layout, seed: int, *, size: float = 0.3, keep_first: bool = True
) -> np.ndarray:
    """Rotate the synergies of starting points inside their span (random orthogonal maps).

    Row r's decoder D, encoder W1 and bias b1 are multiplied by ``M = expm(A - A^T)`` with A
    Gaussian of standard deviation ``size``: the reconstruction's subspace is unchanged but
    the basis inside it is not, so that fits from these starts show whether the data (and the
    penalties) pin the basis down. Row 0 is kept as it is when ``keep_first``.
    """
    from scipy.linalg import expm

    torch = _torch()
    rng = np.random.default_rng(seed)
    out = np.array(x0, dtype=float, copy=True)
    k = layout.k
    for r in range(out.shape[0]):
        a = rng.standard_normal((k, k)) * size
        if keep_first and r == 0:
            continue
        m = expm(a - a.T)
        w1, d, b1, b2 = _split(out[r], layout)
        parts = [np.ascontiguousarray(v) for v in (w1 @ m, d @ m, b1 @ m, b2)]
        out[r] = layout.pack(*[torch.from_numpy(v)[None] for v in parts]).numpy()[0]
    return out


def pairwise_cosines(weights: list[np.ndarray]) -> np.ndarray:
    """The matched mean cosine of the synergies of every pair of fits, (n_pairs,)."""
    vals = []
    for i in range(len(weights)):
        for j in range(i + 1, len(weights)):
            perm, _ = match_columns(weights[i], weights[j])
            a, _ = unit_columns(weights[i])
            b, _ = unit_columns(weights[j][:, perm])
            vals.append(float(np.mean(np.sum(a * b, axis=0))))
    return np.array(vals)


def stability_error(cosines: np.ndarray) -> float:
    """Standard error of a stability: SD of the pairwise cosines over sqrt(pairs) (0 if < 2)."""
    cosines = np.asarray(cosines, dtype=float)
    if cosines.size < 2:
        return 0.0
    return float(np.std(cosines, ddof=1) / np.sqrt(cosines.size))


def pooled_error(errors: np.ndarray) -> float:
    """The standard errors of the stabilities along a path pooled into one (their RMS).

    One noise scale for the whole path: the error of a single grid point, from a handful of
    fold pairs, is itself too noisy to set the tolerance (on the walking trial it ranged
    from 0.0015 to 0.04 along one path).
    """
    errors = np.asarray(errors, dtype=float)
    return float(np.sqrt(np.mean(errors**2))) if errors.size else 0.0


def choose_stable(stability: np.ndarray, errors: np.ndarray, min_tolerance: float) -> int:
    """Index of the largest L1 weight whose stability is within one pooled standard error
    (at least ``min_tolerance``) of the best; 0 when no stability is finite.

    Parameters
    ----------
    stability, errors
        Stability and its standard error at each L1 weight of an ascending grid (n_grid,).
    """
    stability = np.asarray(stability, dtype=float)
    finite = np.isfinite(stability)
    if not finite.any():  # no usable fold fits (e.g. K = 1 with identical folds)
        return 0
    tolerance = max(float(min_tolerance), pooled_error(np.asarray(errors)[finite]))
    best = float(np.max(stability[finite]))
    return int(np.flatnonzero(finite & (stability >= best - tolerance)).max())


@dataclass
class PathFit:
    """Result of :func:`fit_path`.

    Attributes
    ----------
    grid
        L1 weights visited, ascending (n_grid,).
    chosen
        Index of the chosen L1 weight in ``grid``.
    fits
        The full-data problems' fit at every grid value (list of BatchFit).
    stability
        Mean pairwise matched cosine of the fold fits at every grid value (n_grid,), or None.
    stability_se
        Its standard error (SD of the pairwise cosines / sqrt(pairs)) (n_grid,), or None.
    heldout_mse
        Held-out reconstruction MSE (scaled units) per fold and grid value (n_folds, n_grid),
        or None.
    """

    grid: np.ndarray
    chosen: int
    fits: list
    stability: np.ndarray | None = None
    stability_se: np.ndarray | None = None
    heldout_mse: np.ndarray | None = None

    @property
    def fit(self) -> BatchFit:
        return self.fits[self.chosen]


def fit_path(
    x: np.ndarray,
    starts: np.ndarray,
    grid: list[float],
    *,
    k: int,
    tied: bool,
    fold_starts: np.ndarray | None = None,
    fold_masks: np.ndarray | None = None,
    stability_tol: float = 5e-4,
    sample_weight: np.ndarray | None = None,
    **fit_kw: Any,
) -> PathFit:
    """Fit along an ascending path of L1 weights, each fit started from the previous one.

    The L1 penalty is raised step by step (a continuation, as for the lasso path) because a
    large penalty applied at once can silence a latent for good (a ReLU unit whose input is
    negative everywhere has no gradient). With ``fold_starts``, cross-validation fits (one
    per row, trained on the samples where its ``fold_masks`` row is 1) run in the same batch;
    the chosen L1 weight is then the largest whose stability (mean pairwise matched cosine of
    the fold fits) is within one standard error of the best stability (the one-SE rule of
    Hastie et al., towards the sparser model; the error pooled over the grid,
    :func:`pooled_error`), and at least within ``stability_tol`` (:func:`choose_stable`);
    otherwise the last. The standard error matters on short recordings, where the fold fits
    differ by more than the L1 weight changes them: a fixed tolerance then lets the fold
    starting points, i.e. the seed, pick the weight (measured on the 7.6-s walking trial:
    0.003, 0.01 or 0.1 with seeds 0-3, and 0, 3 or 0 NegCps).

    Parameters
    ----------
    x
        Scaled data (T, N).
    starts
        Starting points of the full-data problems (R, P).
    grid
        L1 weights, ascending.
    fold_starts, fold_masks
        Starting points (F, P) and training masks (F, T) of the cross-validation fits.
    sample_weight
        Optional sample weights of the full-data problems (R, T) (resamples).
    fit_kw
        Passed to :func:`fit_batched`.
    """
    grid = [float(g) for g in grid]
    n_full = starts.shape[0]
    t = x.shape[0]
    layout = _Layout(x.shape[1], k, tied)
    weights = sample_weight
    params = starts
    if fold_starts is not None:
        params = np.concatenate([starts, fold_starts])
        main = np.ones((n_full, t)) if sample_weight is None else sample_weight
        weights = np.concatenate([main, fold_masks])
    fits, stab, stab_se, held = [], [], [], []
    memory = None
    for l1 in progress(grid, desc="RLVM L1 path"):
        res = fit_batched(
            x, params, k=k, tied=tied, l1=l1, sample_weight=weights, memory=memory, **fit_kw
        )
        params, memory = res.params, res.memory
        fits.append(
            BatchFit(
                params=res.params[:n_full],
                loss=res.loss[:n_full],
                n_iter=res.n_iter[:n_full],
                n_eval=res.n_eval[:n_full],
                reason=res.reason[:n_full],
            )
        )
        if fold_starts is not None:
            fold_w, mse = [], []
            for f in range(fold_starts.shape[0]):
                w1, d, b1, b2 = _split(res.params[n_full + f], layout)
                fold_w.append(d)
                test = fold_masks[f] == 0
                xt = x[test]
                rec = np.maximum(xt @ w1 + b1, 0.0) @ d.T + b2
                mse.append(float(np.mean((xt - rec) ** 2)) if xt.size else float("nan"))
            cosines = pairwise_cosines(fold_w)
            stab.append(float(np.mean(cosines)) if cosines.size else float("nan"))
            stab_se.append(stability_error(cosines))
            held.append(mse)
    if fold_starts is None:
        return PathFit(grid=np.array(grid), chosen=len(grid) - 1, fits=fits)
    stability, errors = np.array(stab), np.array(stab_se)
    return PathFit(
        grid=np.array(grid),
        chosen=choose_stable(stability, errors, stability_tol),
        fits=fits,
        stability=stability,
        stability_se=errors,
        heldout_mse=np.array(held).T,
    )
