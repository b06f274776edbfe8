"""The full defaults on the real walking trial with several seeds: the same L1 weight, K and
NegCps whatever the seed.

Reads ``../shared/data/musclesynergies_walking`` (musclesyneRgies's example trial, 13 muscles,
7.6 s), converts it to NWB in a temporary folder, conditions it as the pipeline does and runs
the pipeline's synergy and NegCp steps with each seed, printing the L1 weight chosen by
``l1="auto"`` (stability along the grid and its standard error), K, the flagged NegCps
(muscle, synergy) and the CPU time, then the NegCps every seed flags.

Run::

    python benchmarks/bench_walking_seeds.py              # seeds 0 1 2 3
    python benchmarks/bench_walking_seeds.py --seeds 0 1
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "musclesynergies_walking"


def main(argv: list[str] | None = None) -> None:
    from nwb_synergy.convert import convert_walking
    from nwb_synergy.emg import condition_emg
    from nwb_synergy.io.read import read_emg
    from nwb_synergy.pipeline import AnalysisOptions, negcp_step, synergy_step

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        sys.exit(f"walking data not found in {args.data}")
    with tempfile.TemporaryDirectory() as tmp:
        envelope = condition_emg(read_emg(convert_walking(args.data, Path(tmp) / "walk.nwb")))
    flagged = []
    print(f"{'seed':>4}  {'L1':>6}  {'K':>2}  {'NegCps':>6}  {'CPU s':>6}  stability (SE)")
    for seed in args.seeds:
        options = AnalysisOptions(random_state=seed)
        t0 = os.times()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            synergies = synergy_step(envelope, options, [])
            model = synergies.models["rlvm"]
            cv = model.cv_
            negcp_step(synergies, options, [])
        t1 = os.times()
        cpu = (t1.user - t0.user) + (t1.system - t0.system)
        found = {tuple(int(i) for i in pair) for pair in np.argwhere(synergies.negcps.mask)}
        flagged.append(found)
        curve = " ".join(
            f"{s:.3f}({e:.3f})" for s, e in zip(cv["stability"], cv["stability_se"], strict=True)
        )
        print(
            f"{seed:>4}  {model.l1_:>6g}  {model.weights_.shape[1]:>2}  {len(found):>6}  "
            f"{cpu:>6.1f}  {curve}"
        )
    common = set.intersection(*flagged)
    union = set.union(*flagged)
    print(f"\nNegCps (muscle, synergy) flagged by every seed: {sorted(common)}")
    print(f"flagged by some seed only: {sorted(union - common)}")
    print(f"overlap (every seed / any seed): {len(common)} / {len(union)}")


if __name__ == "__main__":
    main()
