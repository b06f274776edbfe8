"""Batched L-BFGS in PyTorch: many independent problems solved in one loop.

Used by :mod:`nwb_synergy.factorize.rlvm` (import torch only through it). Each row of the
parameter matrix ``x`` (n_problems, n_params) is its own problem: its own history, step size,
line search and stopping rule. The objective is evaluated for all rows at once (one batched
tensor computation), so the Python interpreter and the kernel launches are paid once per
iteration instead of once per problem. A problem that meets a stopping rule is frozen and
removed from the batch; the others go on.

Search direction: the compact representation of the inverse BFGS matrix (Byrd, Nocedal and
Schnabel 1994, eq. 3.1) with the last ``history_size`` pairs, evaluated with a few batched
matrix products and two triangular solves instead of the two-loop recursion (whose Python loop
over the history would dominate for the small problems of synergy analysis). Pairs that fail
the curvature condition are stored as zeros, which leaves the matrix unchanged.

Line search: weak Wolfe conditions (sufficient decrease ``c1 = 1e-4``, curvature
``c2 = 0.9``) by bracketing and bisection (Lewis and Overton 2013), vectorised over the
problems still searching; the first trial step is 1 (``min(1, 1/|g|_1)`` on the first
iteration, as in ``torch.optim.LBFGS``).

Stopping rules per problem, those of ``torch.optim.LBFGS``: largest absolute gradient below
``tol_grad``, change of the objective or largest step component below ``tol_change``,
directional derivative above ``-tol_change``, a line search that fails, or ``max_iter``.

Determinism: the same inputs give the same result on the CPU (fixed reduction order for a
fixed batch size and thread count). A problem solved inside a batch follows the same sequence
of operations as when solved alone; results agree to rounding (batched matrix products may
sum in another order).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

Objective = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class LBFGSMemory:
    """Curvature pairs of every problem, to start another run where this one stopped.

    ``s``, ``y`` (n_problems, m, P) oldest first, ``sy``, ``yy`` (n_problems, m, m) their inner
    products, ``valid`` (n_problems, m), ``gamma`` (n_problems,).
    """

    s: torch.Tensor
    y: torch.Tensor
    sy: torch.Tensor
    yy: torch.Tensor
    valid: torch.Tensor
    gamma: torch.Tensor


@dataclass
class LBFGSResult:
    """Outcome of :func:`lbfgs_batched` for every problem.

    Attributes
    ----------
    x
        Final parameters (n_problems, n_params).
    loss
        Final objective values (n_problems,).
    n_iter
        Iterations run per problem (n_problems,).
    n_eval
        Objective evaluations per problem (n_problems,).
    reason
        Why each problem stopped ("max_iter", "tol_grad", "tol_change", "line_search").
    memory
        The final curvature pairs (see ``memory`` of :func:`lbfgs_batched`).
    """

    x: torch.Tensor
    loss: torch.Tensor
    n_iter: torch.Tensor
    n_eval: torch.Tensor
    reason: list[str]
    memory: LBFGSMemory


def _direction(
    g: torch.Tensor,
    s_hist: torch.Tensor,
    y_hist: torch.Tensor,
    sy: torch.Tensor,
    yy: torch.Tensor,
    valid: torch.Tensor,
    gamma: torch.Tensor,
) -> torch.Tensor:
    """``-H g`` with H the L-BFGS inverse Hessian in compact form.

    Parameters
    ----------
    g
        Gradients (r, P).
    s_hist, y_hist
        Steps and gradient changes, oldest first (r, m, P); invalid pairs are zero.
    sy, yy
        Their inner products ``s_i . y_j`` and ``y_i . y_j`` (r, m, m).
    valid
        Which pairs are stored (r, m), bool.
    gamma
        Scaling of the initial matrix ``gamma * I`` (r,).
    """
    upper = torch.triu(sy)
    diag = torch.diagonal(sy, dim1=1, dim2=2) * valid
    upper = upper + torch.diag_embed((~valid).to(g.dtype))  # identity rows for empty slots
    u = torch.bmm(s_hist, g.unsqueeze(2))  # (r, m, 1)
    v = gamma[:, None, None] * torch.bmm(y_hist, g.unsqueeze(2))
    q = torch.linalg.solve_triangular(upper, u, upper=True)  # R^-1 S^T g
    w = diag.unsqueeze(2) * q + gamma[:, None, None] * torch.bmm(yy, q) - v
    a = torch.linalg.solve_triangular(upper.transpose(1, 2), w, upper=False)
    hg = (
        gamma[:, None] * g
        + torch.bmm(s_hist.transpose(1, 2), a).squeeze(2)
        - gamma[:, None] * torch.bmm(y_hist.transpose(1, 2), q).squeeze(2)
    )
    return -hg


def lbfgs_batched(
    fun: Objective,
    x0: torch.Tensor,
    *,
    max_iter: int = 1000,
    history_size: int = 100,
    tol_grad: float = 1e-7,
    tol_change: float = 1e-9,
    max_ls: int = 25,
    c1: float = 1e-4,
    c2: float = 0.9,
    memory: LBFGSMemory | None = None,
) -> LBFGSResult:
    """Minimise ``n_problems`` independent objectives together.

    Parameters
    ----------
    fun
        ``fun(x, idx)`` for x of shape (r, P), the rows ``idx`` (r,) (indices into the problems,
        a CPU long tensor; any subset), returns the objective values (r,) and their gradients
        (r, P). Problems may differ in their objective through ``idx``.
    x0
        Starting points (n_problems, P).
    max_iter, history_size, tol_grad, tol_change
        As in ``torch.optim.LBFGS``.
    max_ls
        Largest number of objective evaluations per line search.
    c1, c2
        Wolfe constants.
    memory
        Curvature pairs to start from (e.g. those of a previous run on a slightly different
        objective, as along a path of penalty weights); the first step is then a quasi-Newton
        step instead of a gradient step.

    Returns
    -------
    LBFGSResult
    """
    x = x0.detach().clone()
    n_prob, n_par = x.shape
    dtype, device = x.dtype, x.device
    m = max(1, int(history_size))

    out_x = x.clone()
    out_f = torch.empty(n_prob, dtype=dtype, device=device)
    out_iter = torch.zeros(n_prob, dtype=torch.long)
    out_eval = torch.zeros(n_prob, dtype=torch.long)
    reason = [""] * n_prob

    f, g = fun(x, torch.arange(n_prob))
    n_eval = torch.ones(n_prob, dtype=torch.long)
    active = torch.arange(n_prob)
    if memory is not None and memory.s.shape == (n_prob, m, n_par):
        s_hist, y_hist = memory.s.clone(), memory.y.clone()
        sy_mat, yy_mat = memory.sy.clone(), memory.yy.clone()
        valid, gamma = memory.valid.clone(), memory.gamma.clone()
    else:
        s_hist = torch.zeros((n_prob, m, n_par), dtype=dtype, device=device)
        y_hist = torch.zeros_like(s_hist)
        sy_mat = torch.zeros((n_prob, m, m), dtype=dtype, device=device)
        yy_mat = torch.zeros_like(sy_mat)
        valid = torch.zeros((n_prob, m), dtype=torch.bool, device=device)
        gamma = torch.ones(n_prob, dtype=dtype, device=device)
    out_mem = LBFGSMemory(
        s_hist.clone(), y_hist.clone(), sy_mat.clone(), yy_mat.clone(), valid.clone(), gamma.clone()
    )

    def finish(done: torch.Tensor, why: str, it: int) -> None:
        """Store the problems flagged in ``done`` (indices into the active batch)."""
        idx = active[done.cpu()]
        out_x[idx] = x[done]
        out_f[idx] = f[done]
        out_iter[idx] = it
        out_eval[idx] = n_eval[done.cpu()]
        out_mem.s[idx], out_mem.y[idx] = s_hist[done], y_hist[done]
        out_mem.sy[idx], out_mem.yy[idx] = sy_mat[done], yy_mat[done]
        out_mem.valid[idx], out_mem.gamma[idx] = valid[done], gamma[done]
        for i in idx.tolist():
            reason[i] = why

    done0 = g.abs().amax(dim=1) <= tol_grad
    if bool(done0.any()):
        finish(done0, "tol_grad", 0)
    keep = ~done0

    it = 0
    while True:
        if not bool(keep.all()):
            k = keep
            kc = k.cpu()
            active, x, f, g = active[kc], x[k], f[k], g[k]
            s_hist, y_hist, valid, gamma = s_hist[k], y_hist[k], valid[k], gamma[k]
            sy_mat, yy_mat = sy_mat[k], yy_mat[k]
            n_eval = n_eval[kc]
        if active.numel() == 0:
            break
        it += 1
        r = active.numel()
        first = ~valid.any(dim=1)
        d = _direction(g, s_hist, y_hist, sy_mat, yy_mat, valid, gamma)
        gtd = (g * d).sum(dim=1)
        t = torch.where(
            first,
            torch.clamp(1.0 / g.abs().sum(dim=1).clamp_min(1e-300), max=1.0),
            torch.ones_like(gtd),
        )
        # ---- weak Wolfe line search (bracketing + bisection), vectorised
        lo = torch.zeros_like(t)
        hi = torch.full_like(t, float("inf"))
        searching = gtd < -tol_change
        x_new, f_new, g_new = x.clone(), f.clone(), g.clone()
        ok = torch.zeros(r, dtype=torch.bool, device=device)
        armijo_t = torch.zeros_like(t)  # last step that met sufficient decrease
        for _ in range(max_ls):
            idx = torch.nonzero(searching).squeeze(1)
            if idx.numel() == 0:
                break
            xt = x[idx] + t[idx, None] * d[idx]
            ft, gt = fun(xt, active[idx.cpu()])
            n_eval[idx.cpu()] += 1
            decrease = ft <= f[idx] + c1 * t[idx] * gtd[idx]
            decrease &= torch.isfinite(ft)
            curvature = (gt * d[idx]).sum(dim=1) >= c2 * gtd[idx]
            accept = decrease & curvature
            x_new[idx] = torch.where(decrease[:, None], xt, x_new[idx])
            f_new[idx] = torch.where(decrease, ft, f_new[idx])
            g_new[idx] = torch.where(decrease[:, None], gt, g_new[idx])
            armijo_t[idx] = torch.where(decrease, t[idx], armijo_t[idx])
            ok[idx] = ok[idx] | decrease
            ti, loi, hii = t[idx], lo[idx], hi[idx]
            hii = torch.where(decrease, hii, ti)
            loi = torch.where(decrease & ~curvature, ti, loi)
            nxt = torch.where(torch.isfinite(hii), 0.5 * (loi + hii), 2.0 * loi)
            t[idx], lo[idx], hi[idx] = nxt, loi, hii
            still = searching.clone()
            still[idx] = ~accept
            searching = still
        # a problem whose search never met sufficient decrease stops where it is
        failed = ~ok
        s = x_new - x
        y = g_new - g
        ys = (s * y).sum(dim=1)
        good = ok & (ys > 1e-10)
        s_hist = torch.roll(s_hist, -1, dims=1)
        y_hist = torch.roll(y_hist, -1, dims=1)
        valid = torch.roll(valid, -1, dims=1)
        s_new = torch.where(good[:, None], s, torch.zeros_like(s))
        y_new = torch.where(good[:, None], y, torch.zeros_like(y))
        s_hist[:, -1] = s_new
        y_hist[:, -1] = y_new
        valid[:, -1] = good
        # inner products: shift, then fill the new row and column
        sy_mat = torch.roll(sy_mat, (-1, -1), dims=(1, 2))
        yy_mat = torch.roll(yy_mat, (-1, -1), dims=(1, 2))
        sy_mat[:, -1, :] = torch.bmm(y_hist, s_new.unsqueeze(2)).squeeze(2)  # s_new . y_j
        sy_mat[:, :, -1] = torch.bmm(s_hist, y_new.unsqueeze(2)).squeeze(2)  # s_i . y_new
        yy_col = torch.bmm(y_hist, y_new.unsqueeze(2)).squeeze(2)
        yy_mat[:, -1, :] = yy_col
        yy_mat[:, :, -1] = yy_col
        yy = (y * y).sum(dim=1)
        gamma = torch.where(good, ys / yy.clamp_min(1e-300), gamma)
        f_old = f
        step = armijo_t.abs() * d.abs().amax(dim=1)
        x, f, g = x_new, f_new, g_new

        why = torch.full((r,), 1 if it >= max_iter else 0, dtype=torch.long, device=device)
        why = torch.where((f_old - f).abs() < tol_change, torch.full_like(why, 3), why)
        why = torch.where(ok & (step <= tol_change), torch.full_like(why, 3), why)
        why = torch.where(g.abs().amax(dim=1) <= tol_grad, torch.full_like(why, 2), why)
        why = torch.where(gtd >= -tol_change, torch.full_like(why, 3), why)
        why = torch.where(failed & (gtd < -tol_change), torch.full_like(why, 4), why)
        names = {1: "max_iter", 2: "tol_grad", 3: "tol_change", 4: "line_search"}
        for code, name in names.items():
            sel = why == code
            if bool(sel.any()):
                finish(sel, name, it)
        keep = why == 0
    return LBFGSResult(
        x=out_x, loss=out_f, n_iter=out_iter, n_eval=out_eval, reason=reason, memory=out_mem
    )
