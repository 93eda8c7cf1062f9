"""Progress bars that redraw a fixed number of times, however fast or slow the machine.

In Jupyter, `tqdm.auto` draws an ipywidget, and each redraw sends up to three
messages (the bar's value, the left text, the right text) to the front end on
the kernel's IOPub channel. tqdm redraws by the clock (every `mininterval`),
so a slower machine redraws more often per step: 0.4 messages a step for a
loop of 0 s steps, 1.9 at 0.05 s, 3.8 at 0.15 s, 4.4 at 0.5 s (measured, with
`set_postfix` redrawing once more each step, as training did). Notebook 06's
training cell (4 epochs of 113 steps) sent 1,675 IOPub messages on a 2-core
machine, about 2,000 on a slower one.

nbval reads none of them while the cell runs: it waits for the shell reply
first, then drains IOPub allowing 5 s per message. The backlog fills ZMQ's
queues (1,000 messages on each side by default); on a loaded machine, after
1,100 to 1,200 messages had arrived the rest came more than 5 s late, and
beyond several thousand they were lost. Either way nbval failed with
"Timeout of 5 seconds exceeded waiting for output". A bar from `progress`
redraws at most `redraws` times, so a cell's output stays a few hundred
messages on any machine (`tests/test_progress.py` runs both under nbval).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from tqdm.auto import tqdm

REDRAWS = 20  # per bar: one every 5%, about 60 IOPub messages in a notebook
MININTERVAL = 0.5  # seconds; a fast loop redraws less often still


def progress(
    iterable: Iterable, desc: str | None = None, total: int | None = None, redraws: int = REDRAWS, **options
) -> tqdm:
    """`tqdm.auto.tqdm(iterable, desc=...)` that redraws at most about `redraws` times.

    A fixed `miniters` (steps between redraws, from the total) turns off tqdm's
    speed-adaptive one. `maxinterval` is infinite because tqdm's monitor thread
    otherwise sets `miniters` back to 1 on any bar that has not redrawn for
    10 s, that is, on exactly the slow machine. Update the bar's text with
    `set_postfix(..., refresh=False)`: it then shows at the next redraw
    instead of forcing one. Other keyword arguments go to tqdm.
    """
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    every = max(1, math.ceil(total / redraws)) if total else 1
    return tqdm(
        iterable, desc=desc, total=total, miniters=every, mininterval=MININTERVAL, maxinterval=math.inf, **options
    )
