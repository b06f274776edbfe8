"""Figures of synergies, model order, cycle-averaged activations, STAs and muscle fields.

Every function takes plain arrays and returns a :class:`matplotlib.figure.Figure`;
:func:`report` reads a results NWB file and draws all of them, so every figure the tool shows
can be reproduced from the file alone. Matplotlib runs on the non-interactive Agg backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .compare import match_columns

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

METHOD_COLORS = {"truth": "#8c8c8c", "nmf": "#4C72B0", "rlvm": "#DD8452"}
EFFECT_COLORS = {"PSF": "#1b9e3a", "PSpS": "#c0392b", None: "#555555"}
NEGCP_COLOR = "#c0392b"


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    # Figure() (not pyplot) draws on Agg without touching any GUI backend or global state
    return Figure(figsize=(width, height), layout="constrained")


def _color(method: str, i: int) -> str:
    fallback = ["#4C72B0", "#DD8452", "#55A868", "#8172B3"]
    return METHOD_COLORS.get(method.lower(), fallback[i % len(fallback)])


def plot_synergy_weights(
    weights: Mapping[str, np.ndarray],
    muscle_names: Sequence[str],
    *,
    negcps: Mapping[str, np.ndarray] | None = None,
    vaf: Mapping[str, Sequence[float]] | None = None,
    match: bool = True,
    title: str | None = None,
) -> Figure:
    """Synergy weights of one or more methods side by side, NegCps marked.

    Parameters
    ----------
    weights
        Method name -> weights (n_muscles, K). The first method is the reference order; the
        others' synergies are matched to it (cosine, one to one) when ``match``.
    muscle_names
        One name per row of the weights.
    negcps
        Method name -> boolean (n_muscles, K): weights flagged as negative components, drawn
        with a red edge and a star.
    vaf
        Method name -> VAF of each synergy (fraction), shown in the panel titles.
    match
        Reorder the other methods' synergies to match the first method's.
    title
        Figure title.

    Returns
    -------
    Figure
        One panel per synergy (columns); muscles on the vertical axis, one bar per method.
    """
    methods = list(weights)
    if not methods:
        raise ValueError("no weights to plot")
    ref = np.asarray(weights[methods[0]], dtype=float)
    n_muscles = ref.shape[0]
    negcps = dict(negcps or {})
    ordered: dict[str, np.ndarray] = {}
    masks: dict[str, np.ndarray] = {}
    cosines: dict[str, np.ndarray] = {}
    orders: dict[str, np.ndarray] = {}
    for name in methods:
        w = np.asarray(weights[name], dtype=float)
        mask = np.asarray(negcps.get(name, np.zeros_like(w, dtype=bool)), dtype=bool)
        if match and name != methods[0]:
            order, cos = match_columns(ref, w)
            w, mask = w[:, order], mask[:, order]
            cosines[name] = cos
            orders[name] = order
        ordered[name], masks[name] = w, mask
    n_syn = max(w.shape[1] for w in ordered.values())
    fig = _figure(1.0 + 2.3 * n_syn, 1.2 + 0.28 * n_muscles)
    axes = fig.subplots(1, n_syn, sharey=True, squeeze=False)[0]
    y = np.arange(n_muscles)
    height = 0.8 / len(methods)
    lim = max(np.abs(w).max() for w in ordered.values()) * 1.1
    lowest = min(w.min() for w in ordered.values())
    left = min(-0.05 * lim, 1.6 * lowest - 0.05 * lim)  # room for the stars of NegCps
    for k, ax in enumerate(axes):
        for i, name in enumerate(methods):
            w = ordered[name]
            if k >= w.shape[1]:
                continue
            offset = (i - (len(methods) - 1) / 2) * height
            ax.barh(y + offset, w[:, k], height=height, color=_color(name, i), label=name.upper())
            flagged = np.flatnonzero(masks[name][:, k])
            if flagged.size:
                ax.barh(
                    y[flagged] + offset,
                    w[flagged, k],
                    height=height,
                    fill=False,
                    edgecolor=NEGCP_COLOR,
                    linewidth=1.5,
                )
                ax.plot(
                    w[flagged, k] - 0.06 * lim,
                    y[flagged] + offset,
                    marker="*",
                    color=NEGCP_COLOR,
                    markersize=9,
                    linestyle="none",
                    label="NegCp" if k == 0 and i == len(methods) - 1 else None,
                )
        ax.axvline(0, color="k", linewidth=0.8)
        ax.set_xlim(left, lim)
        label = f"synergy {k + 1}"
        extra = []
        for name in methods:
            if vaf and name in vaf and k < len(vaf[name]):
                extra.append(f"{name.upper()} {100 * vaf[name][k]:.0f}%")
        if extra:
            label += "\nVAF " + ", ".join(extra)
        for name, cos in cosines.items():
            if k < len(cos):
                label += f"\ncos({methods[0].upper()},{name.upper()}) = {cos[k]:.2f}"
                if orders[name][k] != k:
                    label += f" ({name.upper()} #{orders[name][k] + 1})"
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("weight")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, list(muscle_names))
    axes[0].invert_yaxis()
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), frameon=False)
    fig.suptitle(title or "Synergy weights (NegCps: red star)", fontsize=11)
    return fig


def plot_activations(
    times: np.ndarray,
    activations: Mapping[str, np.ndarray],
    *,
    weights: Mapping[str, np.ndarray] | None = None,
    window: tuple[float, float] | None = None,
    events: Sequence[float] | None = None,
    events_label: str = "event",
    scale: bool = True,
    title: str | None = None,
) -> Figure:
    """Activation coefficients over time, one row per synergy, methods overlaid.

    Parameters
    ----------
    times
        Sample times in seconds, (n_times,).
    activations
        Method name -> activations (n_times, K).
    weights
        Method name -> weights (n_muscles, K); when given, the other methods' synergies are
        matched to the first method's, as in :func:`plot_synergy_weights`.
    window
        Time range to draw (default: the first 20 s).
    events
        Times (s) drawn as thin vertical lines (e.g. touchdowns of gait cycles).
    events_label
        Legend label of the events.
    scale
        Divide each activation by its maximum over the whole record, so that methods whose
        activations have different units (or synergies different norms) overlay.
    title
        Figure title.

    NaN samples (times outside the analysed intervals) are drawn as gaps; the default window
    starts at the first finite sample.
    """
    methods = list(activations)
    times = np.asarray(times, dtype=float)
    if window is None:
        first = np.asarray(activations[methods[0]], dtype=float)
        finite = np.flatnonzero(np.isfinite(first).all(axis=1)) if first.ndim == 2 else []
        t0 = times[finite[0]] if len(finite) else times[0]
        window = (t0, min(times[-1], t0 + 20.0))
    keep = (times >= window[0]) & (times <= window[1])
    ordered = {}
    for name in methods:
        h = np.asarray(activations[name], dtype=float)
        if weights is not None and name != methods[0] and name in weights:
            order, _ = match_columns(np.asarray(weights[methods[0]]), np.asarray(weights[name]))
            h = h[:, order]
        if scale:
            top = np.nanmax(np.where(np.isfinite(h), h, -np.inf), axis=0)
            h = h / np.where(top > 0, top, 1.0)
        ordered[name] = h
    n_syn = max(h.shape[1] for h in ordered.values())
    fig = _figure(9.0, 0.9 + 1.1 * n_syn)
    axes = fig.subplots(n_syn, 1, sharex=True, squeeze=False)[:, 0]
    for k, ax in enumerate(axes):
        for i, name in enumerate(methods):
            h = ordered[name]
            if k < h.shape[1]:
                ax.plot(times[keep], h[keep, k], color=_color(name, i), lw=1.0, label=name.upper())
        if events is not None:
            shown = [e for e in events if window[0] <= e <= window[1]]
            for j, e in enumerate(shown):
                ax.axvline(e, color="0.55", lw=0.8, ls="--", label=events_label if j == 0 else None)
        ax.set_ylabel(f"syn {k + 1}", rotation=0, ha="right", va="center")
        ax.set_ylim(bottom=0)
        ax.spines[["top", "right"]].set_visible(False)
    axes[-1].set_xlabel("time (s)")
    axes[0].legend(loc="upper right", ncol=len(methods) + 1, fontsize=8, frameon=False)
    fig.suptitle(
        title
        or ("Synergy activations (each scaled to its maximum)" if scale else "Synergy activations"),
        fontsize=11,
    )
    return fig


def plot_cycle_activations(
    patterns: Mapping[str, np.ndarray],
    *,
    phase_bounds: Sequence[int] = (),
    phase_labels: Sequence[str] | None = None,
    weights: Mapping[str, np.ndarray] | None = None,
    centers: Mapping[str, Sequence[float]] | None = None,
    widths: Mapping[str, Sequence[float]] | None = None,
    title: str | None = None,
) -> Figure:
    """Cycle-averaged activations with their spread over cycles, one row per synergy.

    Parameters
    ----------
    patterns
        Method name -> activations time-normalised per cycle, (n_cycles, n_points, K)
        (:func:`~nwb_synergy.cycles.normalize_cycles`).
    phase_bounds
        Point index where each phase after the first begins (e.g. ``[100]``: lift-off).
    phase_labels
        Name of each phase (e.g. ``("stance", "swing")``), written along the top.
    weights
        Method name -> weights (n_muscles, K); when given, the other methods' synergies are
        matched to the first method's.
    centers, widths
        Method name -> centre of activity and FWHM of each synergy (points), shown as a
        marker and in the legend.
    title
        Figure title.

    Returns
    -------
    Figure
        x: % of the cycle; each method's mean over cycles (line) +- 1 SD (band), each synergy
        scaled to the maximum of its mean.
    """
    methods = list(patterns)
    if not methods:
        raise ValueError("no cycle patterns to plot")
    ordered, order_of = {}, {}
    for name in methods:
        p = np.asarray(patterns[name], dtype=float)
        order = np.arange(p.shape[2])
        if weights is not None and name != methods[0] and name in weights:
            order, _ = match_columns(np.asarray(weights[methods[0]]), np.asarray(weights[name]))
        ordered[name], order_of[name] = p[:, :, order], order
    n_syn = max(p.shape[2] for p in ordered.values())
    n_points = ordered[methods[0]].shape[1]
    x = 100.0 * np.arange(n_points) / n_points
    fig = _figure(6.5, 0.9 + 1.15 * n_syn)
    axes = fig.subplots(n_syn, 1, sharex=True, squeeze=False)[:, 0]
    for k, ax in enumerate(axes):
        for i, name in enumerate(methods):
            p = ordered[name]
            if k >= p.shape[2]:
                continue
            mean = p[:, :, k].mean(axis=0)
            sd = p[:, :, k].std(axis=0, ddof=1) if p.shape[0] > 1 else np.zeros_like(mean)
            top = mean.max() if mean.max() > 0 else 1.0
            color = _color(name, i)
            label = f"{name.upper()} (n = {p.shape[0]})"
            j = order_of[name][k]
            if widths and name in widths:
                label += f", FWHM {100 * widths[name][j] / n_points:.0f}%"
            ax.fill_between(x, (mean - sd) / top, (mean + sd) / top, color=color, alpha=0.2, lw=0)
            ax.plot(x, mean / top, color=color, lw=1.4, label=label)
            if centers and name in centers and np.isfinite(centers[name][j]):
                ax.axvline(100 * centers[name][j] / n_points, color=color, lw=1.0, ls=":")
        for b in phase_bounds:
            ax.axvline(100.0 * b / n_points, color="0.4", lw=0.8)
        ax.set_ylabel(f"syn {k + 1}", rotation=0, ha="right", va="center")
        ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(loc="upper right", fontsize=7, frameon=False)
    if phase_labels:
        edges = [0, *phase_bounds, n_points]
        for lab, a, b in zip(phase_labels, edges[:-1], edges[1:], strict=False):
            axes[0].annotate(
                lab,
                xy=(50.0 * (a + b) / n_points, 1.0),
                xycoords=("data", "axes fraction"),
                ha="center",
                va="bottom",
                fontsize=8,
            )
    axes[-1].set_xlabel("% of cycle")
    fig.suptitle(
        title or "Cycle-averaged activations (mean ± SD over cycles; dotted: centre of activity)",
        fontsize=10,
    )
    return fig


def plot_model_order(
    n_synergies: Sequence[int],
    vaf: Sequence[float],
    r2: Sequence[float] | None = None,
    *,
    chosen: int | None = None,
    threshold: float | None = 0.9,
    rule: str | None = None,
    title: str | None = None,
) -> Figure:
    """VAF (uncentered) and R^2 (centered) against the number of synergies.

    Parameters
    ----------
    n_synergies
        Numbers of synergies tried, (n,).
    vaf, r2
        Fit measures (fractions) for each, (n,).
    chosen
        The number selected, drawn as a vertical line.
    threshold
        A VAF threshold drawn as a horizontal line (None: none).
    rule
        Name of the selection rule, shown in the legend.
    """
    k = np.asarray(n_synergies)
    fig = _figure(5.0, 3.6)
    ax = fig.subplots()
    ax.plot(k, 100 * np.asarray(vaf), "o-", color="#4C72B0", label="VAF (uncentered)")
    if r2 is not None:
        ax.plot(k, 100 * np.asarray(r2), "s-", color="#55A868", label="R$^2$ (centered)")
    if threshold is not None:
        ax.axhline(100 * threshold, color="0.5", ls=":", lw=1, label=f"{100 * threshold:.0f}%")
    if chosen is not None:
        ax.axvline(
            chosen,
            color="#c0392b",
            ls="--",
            lw=1.2,
            label=f"chosen K = {chosen}" + (f" ({rule})" if rule else ""),
        )
    ax.set_xticks(k)
    ax.set_xlabel("number of synergies")
    ax.set_ylabel("% of EMG explained")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title or "Model order", fontsize=11)
    return fig


def plot_sta_grid(
    lags: np.ndarray,
    sta: np.ndarray,
    muscle_names: Sequence[str],
    *,
    effects: Sequence[str | None] | None = None,
    mpi: Sequence[float] | None = None,
    baseline: tuple[float, float] = (-0.03, -0.01),
    test_window: tuple[float, float] | None = (0.003, 0.015),
    unit: str = "",
    n_spikes: int | None = None,
    ncols: int = 4,
) -> Figure:
    """Spike-triggered averages of one unit, one panel per muscle, effects marked.

    Parameters
    ----------
    lags
        Lags in seconds, (n_lags,).
    sta
        Average rectified EMG (n_lags, n_muscles).
    muscle_names
        One name per column.
    effects
        Per muscle "PSF", "PSpS" or None; colours the trace and the panel title.
    mpi
        Mean percent increase per muscle, shown in the title where an effect was found.
    baseline, test_window
        Windows (s) shaded grey (baseline) and tinted (test).
    unit
        Unit label for the title.
    n_spikes
        Spikes averaged, for the title.
    """
    lags_ms = 1e3 * np.asarray(lags, dtype=float)
    sta = np.asarray(sta, dtype=float)
    n_muscles = sta.shape[1]
    ncols = min(ncols, n_muscles)
    nrows = int(np.ceil(n_muscles / ncols))
    fig = _figure(2.3 * ncols, 0.6 + 1.55 * nrows)
    axes = fig.subplots(nrows, ncols, sharex=True, squeeze=False)
    effects = list(effects) if effects is not None else [None] * n_muscles
    for m in range(nrows * ncols):
        ax = axes.flat[m]
        if m >= n_muscles:
            ax.set_visible(False)
            continue
        effect = effects[m] if effects[m] in ("PSF", "PSpS") else None
        color = EFFECT_COLORS[effect]
        in_base = (lags_ms >= 1e3 * baseline[0]) & (lags_ms <= 1e3 * baseline[1])
        base = sta[in_base, m].mean() if in_base.any() else sta[:, m].mean()
        scale = base if base > 0 else np.abs(sta[:, m]).max() or 1.0
        trace = 100 * (sta[:, m] - base) / scale  # % of baseline
        ax.axvspan(1e3 * baseline[0], 1e3 * baseline[1], color="0.9", lw=0)
        if test_window is not None:
            ax.axvspan(1e3 * test_window[0], 1e3 * test_window[1], color=color, alpha=0.12, lw=0)
        ax.axhline(0, color="0.6", lw=0.6)
        ax.axvline(0, color="k", lw=0.6, ls=":")
        ax.plot(lags_ms, trace, color=color, lw=1.4 if effect else 0.9)
        label = muscle_names[m]
        if effect:
            label += f"  {effect}"
            if mpi is not None and np.isfinite(mpi[m]):
                label += f" {mpi[m]:+.1f}%"
        ax.set_title(label, fontsize=8.5, color=color, fontweight="bold" if effect else None)
        ax.tick_params(labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("lag (ms)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("% of baseline", fontsize=8)
    head = f"Spike-triggered averages, unit {unit}" if unit != "" else "Spike-triggered averages"
    if n_spikes is not None:
        head += f" ({n_spikes:,} spikes)"
    head += "  —  green: facilitation (PSF), red: suppression (PSpS)"
    fig.suptitle(head, fontsize=10)
    return fig


def plot_muscle_fields(
    fields: np.ndarray,
    muscle_names: Sequence[str],
    unit_names: Sequence[str],
    *,
    weights: np.ndarray | None = None,
    negcps: np.ndarray | None = None,
    best_synergy: Sequence[int | None] | None = None,
    similarity: Sequence[float] | None = None,
    title: str | None = None,
) -> Figure:
    """Muscle fields of the units above the synergies, muscles aligned.

    Parameters
    ----------
    fields
        Signed fields (n_units, n_muscles), max |.| = 1 (0 where no effect).
    muscle_names, unit_names
        Labels of the columns and of the rows of ``fields``.
    weights
        Synergy weights (n_muscles, K) drawn below the fields on the same colour scale
        (each column scaled to max |.| = 1).
    negcps
        Boolean (n_muscles, K): NegCps, marked with a dot.
    best_synergy
        Per unit the index of its best-matching synergy (or None), shown at the row end when
        the cosine is positive.
    similarity
        Per unit the cosine with that synergy.
    """
    fields = np.asarray(fields, dtype=float)
    n_units, n_muscles = fields.shape
    n_syn = 0 if weights is None else np.asarray(weights).shape[1]
    rows = n_units + n_syn
    fig = _figure(2.2 + 0.45 * n_muscles, 1.4 + 0.32 * rows + (0.4 if n_syn else 0))
    ratios = [max(n_units, 1)] + ([n_syn] if n_syn else [])
    axes = fig.subplots(len(ratios), 1, squeeze=False, height_ratios=ratios)[:, 0]
    kwargs = dict(cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    ax = axes[0]
    image = ax.imshow(fields, **kwargs)
    ax.set_yticks(np.arange(n_units), [str(u) for u in unit_names], fontsize=8)
    ax.set_ylabel("unit")
    ax.set_xticks(np.arange(n_muscles), [] if n_syn else list(muscle_names), rotation=90)
    ax.set_title("Muscle fields (red: facilitation, blue: suppression)", fontsize=10)
    if best_synergy is not None:
        for u, k in enumerate(best_synergy):
            if k is None or (isinstance(k, float) and not np.isfinite(k)) or int(k) < 0:
                continue
            if similarity is not None and not similarity[u] > 0:
                continue  # a field with no positive cosine matches no synergy
            text = f"syn {int(k) + 1}"
            if similarity is not None:
                text += f" (cos {similarity[u]:.2f})"
            ax.text(n_muscles - 0.4, u, "  " + text, va="center", ha="left", fontsize=7.5)
    if n_syn:
        w = np.asarray(weights, dtype=float)
        scaled = w / np.maximum(np.abs(w).max(axis=0), 1e-300)
        ax2 = axes[1]
        ax2.imshow(scaled.T, **kwargs)
        ax2.set_yticks(np.arange(n_syn), [f"syn {k + 1}" for k in range(n_syn)], fontsize=8)
        ax2.set_xticks(np.arange(n_muscles), list(muscle_names), rotation=90, fontsize=8)
        ax2.set_title("Synergies (each scaled to max |w| = 1; dot: NegCp)", fontsize=10)
        if negcps is not None:
            m_idx, k_idx = np.nonzero(np.asarray(negcps, dtype=bool))
            ax2.plot(m_idx, k_idx, "o", color="k", markersize=4)
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="signed effect / weight")
    fig.suptitle(title or "Muscle fields against synergies", fontsize=11)
    return fig


def plot_synergy_classes(classes, *, max_classes: int = 12, title: str | None = None) -> Figure:
    """The classes of synergies across sessions: each class's mean weights and its members.

    Parameters
    ----------
    classes
        A :class:`~nwb_synergy.classes.SynergyClasses`: ``weights`` (n_muscles, n_synergies),
        ``labels``, ``centroids`` (n_muscles, n_classes), ``similarity``, ``members`` and
        ``muscle_names``.
    max_classes
        Draw at most this many classes (the largest).
    title
        Figure title.
    """
    n_classes = min(int(classes.centroids.shape[1]), max_classes)
    muscles = list(classes.muscle_names)
    x = np.arange(len(muscles))
    n_cols = min(n_classes, 4)
    n_rows = int(np.ceil(n_classes / n_cols))
    fig = _figure(3.0 * n_cols + 0.5, 2.4 * n_rows + 0.6)
    axes = np.atleast_1d(fig.subplots(n_rows, n_cols, squeeze=False)).ravel()
    n_sessions = len({s for s, _ in classes.members})
    for c, ax in enumerate(axes):
        if c >= n_classes:
            ax.set_visible(False)
            continue
        members = np.flatnonzero(classes.labels == c)
        ax.bar(x, classes.centroids[:, c], color="#bbbbbb", width=0.8, label="class mean")
        for k in members:
            ax.plot(x, classes.weights[:, k], color="#4C72B0", alpha=0.5, lw=0.8, marker=".")
        ax.axhline(0.0, color="black", lw=0.5)
        cos = classes.similarity[members]
        ax.set_title(
            f"class {c}: {members.size} of {n_sessions} sessions\n"
            f"cosine to mean {cos.min():.2f}-{cos.max():.2f}",
            fontsize=9,
        )
        ax.set_xticks(x)
        ax.set_xticklabels(muscles, rotation=90, fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def save_figure(
    fig: Figure, path: str | Path, formats: Sequence[str] = ("png", "svg")
) -> list[Path]:
    """Save a figure under ``path`` (suffix replaced) in each format; returns the paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        target = path.with_suffix("." + fmt)
        fig.savefig(target, dpi=120 if fmt == "png" else None)
        out.append(target)
    return out


# -- figures from a results file --------------------------------------------------------------


def _reference_label(labels: Sequence[str]) -> list[str]:
    """Draw order: the truth first (reference for matching) when present, then NMF, RLVM."""
    rank = {"truth": 0, "nmf": 1, "rlvm": 2}
    return sorted(labels, key=lambda s: (rank.get(s.lower(), 3), s))


def _read_contexts(path: str | Path) -> dict[str, dict]:
    """The intervals, groups and cycles behind each synergy table ({} when none is stored)."""
    from .errors import InputError
    from .io.intervals import read_contexts

    try:
        return read_contexts(path)
    except InputError:
        return {}


def context_title(context: Mapping | None) -> str:
    """What a synergy set was computed on, for figure titles (``""`` for the whole record)."""
    if not context:
        return ""
    parts = []
    group = context.get("group")
    intervals = context.get("intervals")
    if group:
        parts.append(
            f"{group['table']} with {group['column']} = {group['value']} "
            f"({group['n_intervals']} intervals)"
        )
    cycles = context.get("cycles")
    if intervals and not group:
        kind = "cycles" if cycles and intervals.get("table") == cycles.get("table") else "intervals"
        parts.append(f"{intervals['n_intervals']} {kind} of {intervals['table']}")
    if cycles and (not intervals or intervals.get("table") != cycles.get("table")):
        parts.append(f"cycles of {cycles['table']}")
    chain = (context.get("conditioning") or {}).get("chain")
    if chain == "envelope":
        parts.append("envelope chain")
    return "; ".join(parts)


def _masked(activations: np.ndarray, times: np.ndarray, spans: Mapping | None) -> np.ndarray:
    """Activations with NaN outside the analysed intervals (written as 0 there)."""
    if not spans or "starts" not in spans:
        return activations
    inside = np.zeros(times.size, dtype=bool)
    half = 0.5 * (times[1] - times[0]) if times.size > 1 else 0.0
    for a, b in zip(spans["starts"], spans["stops"], strict=True):
        inside |= (times >= a - half) & (times < b)
    out = np.array(activations, dtype=float)
    out[~inside] = np.nan
    return out


def _phase_labels(column: str | None) -> tuple[str, str] | None:
    """``("before liftoff", "from liftoff")`` for a phase column ``liftoff_time``."""
    if not column:
        return None
    event = column[: -len("_time")] if column.endswith("_time") else column
    return (f"before {event}", f"from {event}")


def _truth_in_fitted_units(syn: Mapping, weights: dict) -> tuple[dict, str]:
    """A simulated truth's weights divided by the conditioning scale of the fitted sets, so
    that bars and cosines compare like with like; and a title note saying so ("" if no
    truth or no recorded scale)."""
    from .compare import conditioning_scale, weights_in_conditioned_units
    from .errors import InputError

    truth = next((lab for lab in weights if lab.lower() == "truth"), None)
    fitted = [lab for lab in weights if lab != truth and syn[lab].conditioning]
    if truth is None or not fitted:
        return weights, ""
    try:
        scale = conditioning_scale(syn[fitted[0]].conditioning)
    except InputError:
        return weights, ""
    if scale.shape[0] != weights[truth].shape[0] or np.all(scale == 1.0):
        return weights, ""
    out = dict(weights)
    converted = weights_in_conditioned_units(weights[truth], scale)
    norms = np.linalg.norm(converted, axis=0)
    out[truth] = converted / np.where(norms > 0, norms, 1.0)  # unit columns, as fitted ones
    return out, "\ntruth divided by each muscle's conditioning scale, as the EMG was"


def _synergy_figures(res, labels: list[str], contexts: Mapping, save, tag: str) -> None:
    """Weights, activations, cycle-averaged activations and model order of one synergy set."""
    from .cycles import normalize_cycles

    syn = res.synergies
    muscles = syn[labels[0]].muscle_names
    context = contexts.get(labels[0], {})
    where = context_title(context)
    suffix = f" — {where}" if where else ""
    weights = {lab: syn[lab].weights for lab in labels if syn[lab].muscle_names == muscles}
    weights, units = _truth_in_fitted_units(syn, weights)
    negcps = {lab: syn[lab].negcp for lab in weights if syn[lab].negcp is not None}
    # per-synergy VAF only for methods without an offset: with one (RLVM), each synergy's
    # "VAF alone" includes the offset's share and is not comparable
    vafs = {
        lab: syn[lab].vaf for lab in weights if syn[lab].vaf is not None and not syn[lab].has_offset
    }
    title = "Synergy weights: " + ", ".join(lab.upper() for lab in weights)
    title += " (NegCps: red star)" + units + suffix
    save(
        plot_synergy_weights(weights, muscles, negcps=negcps, vaf=vafs, title=title),
        "synergies" + tag,
    )
    acts = {lab: syn[lab].activations for lab in weights if syn[lab].activations is not None}
    if acts:
        first = syn[next(iter(acts))]
        times = first.t_start + np.arange(first.activations.shape[0]) / first.rate
        spans = context.get("group") or context.get("intervals")
        same = {
            lab: _masked(a, times, spans) for lab, a in acts.items() if a.shape[0] == times.size
        }
        fig = plot_activations(
            times,
            same,
            weights={k: weights[k] for k in same},
            events=res.events,
            events_label="touchdown",
            title="Synergy activations (each scaled to its maximum)" + suffix,
        )
        save(fig, "activations" + tag)
        cycles = context.get("cycles") or {}
        if "starts" in cycles and len(cycles["starts"]):
            patterns, centers, widths = {}, {}, {}
            for lab in same:
                data = normalize_cycles(
                    same[lab],
                    cycles["starts"],
                    stops=cycles["stops"],
                    phase_starts=cycles.get("phase_starts"),
                    points=(cycles.get("metrics") or {}).get("points"),
                    rate=syn[lab].rate,
                    t_start=syn[lab].t_start,
                )
                patterns[lab] = data.data
                metrics = contexts.get(lab, {}).get("cycles", {}).get("metrics") or {}
                if metrics.get("coa_points"):
                    centers[lab] = metrics["coa_points"]
                    widths[lab] = metrics["fwhm_points"]
            phased = cycles.get("phase_starts") is not None
            fig = plot_cycle_activations(
                patterns,
                phase_bounds=data.phase_bounds,
                phase_labels=_phase_labels(cycles.get("phase")) if phased else None,
                weights={k: weights[k] for k in patterns},
                centers=centers,
                widths=widths,
                title=(
                    f"Cycle-averaged activations: {data.n_cycles} cycles of {cycles['table']} "
                    "(mean ± SD; dotted: centre of activity)"
                    + ("" if "cycles" in where else suffix)
                ),
            )
            save(fig, "cycle_activations" + tag)
    for lab in labels:
        mo = syn[lab].model_order
        if mo:
            fig = plot_model_order(
                mo["k_values"],
                mo["vaf_uncentered"],
                mo.get("r2_centered"),
                chosen=mo.get("n_synergies"),
                threshold=(mo.get("details") or {}).get("vaf_threshold", 0.9)
                if mo.get("method") == "vaf"
                else None,
                rule=mo.get("method"),
                title=f"Model order ({lab.upper()}){suffix}",
            )
            save(fig, f"model_order_{lab.lower()}")


def report(
    path: str | Path,
    out_dir: str | Path,
    *,
    formats: Sequence[str] = ("png", "svg"),
    max_units: int | None = None,
) -> list[Path]:
    """Draw every figure of a results NWB file into ``out_dir``.

    Parameters
    ----------
    path
        NWB file holding results of :func:`~nwb_synergy.analyze_session` (or of the writers).
    out_dir
        Folder for the figures (created).
    formats
        File formats, e.g. ("png", "svg").
    max_units
        Draw STA grids of at most this many units (those with effects first); None: all.

    Returns
    -------
    list of Path
        The files written.
    """
    from .errors import InputError
    from .io.results import read_results, synergy_label
    from .text import safe_filename

    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if bad or not formats:
        raise InputError(
            f"figure formats must be png, svg or pdf, got {list(formats)}", obj="format"
        )
    res = read_results(path)
    out_dir = Path(out_dir)
    written: list[Path] = []

    def save(fig, name):
        written.extend(save_figure(fig, out_dir / safe_filename(name), formats))

    syn = res.synergies
    contexts = _read_contexts(path)
    grouped: dict[tuple, list[str]] = {}
    for lab in syn:
        group = contexts.get(lab, {}).get("group")
        if group:
            grouped.setdefault((group["column"], str(group["value"])), []).append(lab)
    in_groups = {lab for labs in grouped.values() for lab in labs}
    labels = _reference_label([lab for lab in syn if lab not in in_groups])
    if labels:
        _synergy_figures(res, labels, contexts, save, "")
    for (column, value), labs in grouped.items():
        tag = f"_{column}_{value}"
        _synergy_figures(res, _reference_label(labs), contexts, save, tag)
    sta = res.sta
    if sta is not None:
        units = sta.units
        order = sorted(units, key=lambda u: (not any(units[u].effects or []), u))
        if max_units is not None:
            order = order[:max_units]
        for uid in order:
            u = units[uid]
            fig = plot_sta_grid(
                sta.lags,
                u.mean,
                sta.muscle_names,
                effects=u.effects,
                mpi=u.mpi,
                unit=str(uid),
                n_spikes=u.n_used,
                baseline=sta.baseline,
                test_window=sta.test_window,
            )
            save(fig, f"sta_unit{uid}")
        if all(units[u].field is not None for u in units):
            ids = sorted(units)
            fields = np.array([units[u].field for u in ids])
            lab = synergy_label(res.match_table)
            if lab not in syn:
                lab = next((x for x in ("RLVM", "NMF") if x in syn), None)
            w = syn[lab].weights if lab and syn[lab].muscle_names == sta.muscle_names else None
            fig = plot_muscle_fields(
                fields,
                sta.muscle_names,
                [str(u) for u in ids],
                weights=w,
                negcps=syn[lab].negcp if w is not None else None,
                best_synergy=[res.matches.get(u, (None, np.nan))[0] for u in ids],
                similarity=[res.matches.get(u, (None, np.nan))[1] for u in ids],
                title=f"Muscle fields against the {lab.upper()} synergies"
                if w is not None
                else None,
            )
            save(fig, "muscle_fields")
    return written
