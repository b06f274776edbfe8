"""Inner progress bars: silent in library calls, tqdm bars inside a run that shows progress."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

from nwb_synergy.progress import counter, progress, showing


def test_library_calls_get_the_iterable_itself_and_a_silent_counter():
    items = [3, 1, 2]
    assert progress(items, desc="RLVM L1 path") is items
    bar = counter(desc="NegCp bootstrap", total=10)
    assert not isinstance(bar, tqdm)
    bar.update(4)
    bar.close()


def test_a_run_showing_progress_gets_tqdm_bars_that_still_yield_every_item():
    with showing(True):
        wrapped = progress(range(5), desc="RLVM L1 path")
        bar = counter(desc="NegCp bootstrap", total=10)
    assert isinstance(wrapped, tqdm) and isinstance(bar, tqdm)
    assert list(wrapped) == [0, 1, 2, 3, 4]
    # drawn only on a terminal (tqdm's disable=None): never debris in logs or captured output
    assert bar.disable == wrapped.disable == (not sys.stderr.isatty())
    bar.update(4)
    bar.close()
    assert progress([1], desc="x") == [1]  # switched off again after the block
