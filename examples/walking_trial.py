"""A real walking trial end to end: CSV -> NWB -> conditioning -> NMF + RLVM -> cycles -> figures.

The data are the example trial of the R package musclesyneRgies (A. Santuz, MIT licence): raw
surface EMG of 13 right-leg muscles at 1 kHz during treadmill walking, with the touchdown and
lift-off times of six gait cycles. They are not shipped with nwb_synergy; this script reads them
from ``../shared/data/musclesynergies_walking`` (or ``--data DIR``) and skips with a message
when they are absent.

Steps:

1. convert the CSV files to NWB (EMG as float32 microvolts with a conversion to volts, gait cycles
   as a TimeIntervals table, subject and licence metadata);
2. check our conditioning against musclesyneRgies's own: the package ships the same trial
   filtered and time-normalised (3 cycles x 200 points); our envelopes, normalised to the same
   stance/swing grid by :func:`nwb_synergy.cycles.normalize_cycles` (100 + 100 points, split at the
   lift-off), should correlate with theirs at r > 0.99 per cycle;
3. extract NMF and RLVM synergies from the EMG of the gait cycles (``cycles="gait_cycles"``),
   the number chosen by musclesyneRgies's rule (the smallest K from which the R^2-vs-K curve
   is a straight line), write them into NWB; their activations are time-normalised per cycle
   and described by their full width at half maximum and centre of activity;
4. draw the figures from the results file (activations with the touchdowns marked, and the
   cycle-averaged activations).

Run ``python examples/walking_trial.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "musclesynergies_walking"
TRIAL = "ID0012_TW_01"


def conditioning_check(data_dir: Path, emg) -> np.ndarray:
    """Correlation of our envelopes with musclesyneRgies's filtered data, per reference cycle.

    musclesyneRgies keeps 3 of the 6 cycles; each of its cycles is compared with every one of
    ours and the best match kept. Returns the mean-over-muscles Pearson r of each of its cycles.
    """
    import pandas as pd

    from nwb_synergy import condition_emg
    from nwb_synergy.cycles import normalize_cycles

    ref = pd.read_csv(data_dir / f"{TRIAL}_filtered_normalized.csv")
    ref = ref[[m for m in emg.muscle_names]].to_numpy()
    cycles = pd.read_csv(data_dir / f"{TRIAL}_cycles.csv")
    # the same filters (high-pass 50 Hz, rectify, low-pass 20 Hz), kept at 1 kHz for the
    # time normalisation; amplitude normalisation does not change a correlation
    env = condition_emg(emg, resample=None, subtract_min=False, normalize=None)
    touchdown = cycles["touchdown_s"].to_numpy()
    ours = normalize_cycles(
        env, touchdown, phase_starts=cycles["liftoff_s"].to_numpy()[:-1], points=(100, 100)
    ).data
    best = []
    for j in range(ref.shape[0] // 200):
        theirs = ref[200 * j : 200 * (j + 1)]
        r = [
            np.mean([np.corrcoef(cyc[:, m], theirs[:, m])[0, 1] for m in range(theirs.shape[1])])
            for cyc in ours
        ]
        best.append(max(r))
    return np.asarray(best)


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the CSV files")
    parser.add_argument(
        "--out", type=Path, default=Path("walking_example"), help="folder for NWB files, figures"
    )
    parser.add_argument(
        "--fast", action="store_true", help="fixed RLVM L1 weight, no NegCp bootstrap (tests)"
    )
    parser.add_argument("--quiet", action="store_true", help="print less")
    args = parser.parse_args(argv)
    say = (lambda *a: None) if args.quiet else print

    if not (args.data / f"{TRIAL}_raw_emg.csv").exists():
        print(f"walking data not found in {args.data}; nothing to do (see the docstring)")
        return None

    from nwb_synergy import analyze_session, read_emg
    from nwb_synergy.convert import convert_walking
    from nwb_synergy.plot import report

    args.out.mkdir(parents=True, exist_ok=True)
    nwb_path = convert_walking(args.data, args.out / "walking.nwb", overwrite=True)
    emg = read_emg(nwb_path)
    say(
        f"1. {nwb_path}: {emg.n_muscles} muscles ({', '.join(emg.muscle_names)}), "
        f"{emg.rate:g} Hz, {emg.duration:.2f} s"
    )

    r = conditioning_check(args.data, emg)
    say(
        "2. our conditioning vs musclesyneRgies's filtered data, r per cycle: "
        + ", ".join(f"{v:.3f}" for v in r)
    )

    # the defaults choose RLVM's L1 weight by cross-validation and test each NegCp with 50
    # block-bootstrap refits (a few minutes); --fast fixes the L1 weight at the value that
    # search picks on this trial (0.01) and keeps only the restart-consistency guard
    fast = {"rlvm_options": {"l1": 0.01}, "negcp_options": {"n_boot": 0}} if args.fast else {}
    results = analyze_session(
        nwb_path,
        args.out / "walking_results.nwb",
        overwrite=True,
        selection="linear_fit",
        cycles="gait_cycles",
        progress=not args.quiet,
        **fast,
    )
    say("3. " + results.summary_text().replace("\n", "\n   "))
    metrics = {m: results.cycles.metrics[m].to_frame() for m in results.cycles.metrics}

    figures = report(results.output, args.out / "figures", formats=("png",))
    say(
        f"4. {len(figures)} figures in {args.out / 'figures'}: "
        + ", ".join(p.name for p in figures)
    )
    return {
        "nwb": nwb_path,
        "conditioning_r": r,
        "results": results,
        "cycle_metrics": metrics,
        "figures": figures,
    }


if __name__ == "__main__":
    main(sys.argv[1:])
