"""Quick start: the Python API of nwb_synergy on simulated data.

1. Synergies from EMG envelopes with a known truth: NMF and RLVM, their comparison with the
   truth, and the negative components (NegCps) that only RLVM can express.
2. A whole session in NWB: simulate it, analyse it in one call, read the summary, draw the
   figures from the results file.

Run ``python examples/quickstart.py`` (``--fast`` for a smaller, quicker version).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="smaller data (for tests)")
    parser.add_argument("--out", type=Path, default=None, help="folder for files (default: temp)")
    args = parser.parse_args(argv)

    from nwb_synergy import NMF, RLVM, analyze_session, compare_synergies, negative_components
    from nwb_synergy.plot import report
    from nwb_synergy.simulate import simulate_session, simulate_synergies

    # -- 1. synergies with a known truth ------------------------------------------------------
    sim = simulate_synergies(
        n_muscles=12, n_synergies=4, n_times=2000 if args.fast else 4000, random_state=0
    )
    emg = sim.emg  # EMG: .data (n_times, n_muscles) >= 0, .rate, .muscle_names
    # NMF chooses K by musclesyneRgies's rule; it has no offset, so the tonic activity of the
    # inhibited muscles costs it one synergy more than the truth
    nmf = NMF(n_synergies="auto", selection="linear_fit", random_state=0).fit(emg)
    # RLVM with the true K; its L1 weight is chosen by cross-validation (l1="auto", the
    # default, a minute or two); --fast fixes it at the value that search picks on these data
    rlvm_options = {"l1": 0.03, "n_restarts": 2} if args.fast else {}
    rlvm = RLVM(n_synergies=sim.n_synergies, random_state=0, **rlvm_options).fit(emg)
    print(f"NMF chose K = {nmf.n_synergies_} (true K = {sim.n_synergies})")
    for name, model in (("NMF", nmf), ("RLVM", rlvm)):
        comp = compare_synergies(sim.weights, model.weights_)
        print(
            f"{name:>4}: VAF {100 * model.vaf_:.1f}% (uncentered), R^2 {100 * model.r2_:.1f}% "
            f"(centered), matched cosine with the truth {comp.mean_cosine:.3f}, "
            f"subspace similarity {comp.subspace_similarity:.3f}"
        )
    # NegCps: threshold, consistency over restarts, block bootstrap (skipped with --fast)
    neg = negative_components(rlvm, emg, n_boot=0 if args.fast else 50, random_state=0)
    found = np.asarray(neg.mask, dtype=bool)
    print(
        f"RLVM NegCps: {int(found.sum())} found, {int(sim.negative_mask.sum())} planted; "
        f"NMF weights are all >= 0: {bool((nmf.weights_ >= 0).all())}"
    )

    # -- 2. a whole NWB session ---------------------------------------------------------------
    out = args.out or Path(tempfile.mkdtemp(prefix="nwb_synergy_quickstart_"))
    out.mkdir(parents=True, exist_ok=True)
    session = simulate_session(
        out / "session.nwb", duration=30.0 if args.fast else 180.0, overwrite=True
    )
    # --fast: NMF only (the demo and the tests cover RLVM on sessions)
    quick = {"methods": ("nmf",)} if args.fast else {}
    results = analyze_session(
        out / "session.nwb",
        out / "results.nwb",
        overwrite=True,
        progress=False,
        n_permutations=1000 if args.fast else 10000,
        **quick,
    )
    print(results.summary_text())
    figures = report(results.output, out / "figures", formats=("png",))
    print(f"{len(figures)} figures in {out / 'figures'}")
    return {
        "sim": sim,
        "nmf": nmf,
        "rlvm": rlvm,
        "negcps": neg,
        "session": session,
        "results": results,
        "figures": figures,
    }


if __name__ == "__main__":
    main(sys.argv[1:])
