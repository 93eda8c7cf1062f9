"""Progress bars redraw a bounded number of times on a slow machine, so a notebook cell's output
stays small enough for nbval (see `progress` in vgpt/runtime.py for the failure this prevents)."""

import itertools
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch
from tqdm import std
from tqdm.auto import tqdm

from vgpt import loading
from vgpt.model import VisionGPT2
from vgpt.runtime import REDRAWS, progress
from vgpt.train import CaptionData, TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]


class SlowClock:
    """tqdm's clock, 2 s later at every reading: each step of a loop looks slow."""

    def __init__(self):
        self.now = 1e9

    def __call__(self):
        self.now += 2.0
        return self.now


@pytest.fixture
def redraws(monkeypatch):
    """Counts tqdm redraws, whatever triggers them, under the slow clock."""
    monkeypatch.setattr(std, "time", SlowClock())
    count = itertools.count()
    draw = std.tqdm.display

    def counted(self, *args, **kwargs):
        next(count)
        return draw(self, *args, **kwargs)

    monkeypatch.setattr(std.tqdm, "display", counted)
    return lambda: next(count)


def test_progress_redraws_a_bounded_number_of_times_however_slow_the_steps(redraws):
    bar = progress(range(2_000), desc="epoch", file=open(os.devnull, "w"))
    for step in bar:
        bar.set_postfix(loss=f"{1 / (step + 1):.3f}", refresh=False)
    assert redraws() <= REDRAWS + 2  # + the first draw and the last


def test_a_plain_tqdm_bar_redraws_every_step_when_steps_are_slow(redraws):
    """The negative control: what training did before, two redraws a step."""
    bar = tqdm(range(2_000), desc="epoch", file=open(os.devnull, "w"))
    for step in bar:
        bar.set_postfix(loss=f"{1 / (step + 1):.3f}")
    assert redraws() >= 2 * 2_000


def test_training_redraws_its_bar_a_bounded_number_of_times(redraws, monkeypatch):
    monkeypatch.setattr("vgpt.train.progress", lambda *a, **kw: progress(*a, **kw, file=open(os.devnull, "w")))
    parts = loading.load_profile("tiny", verbose=False)
    spec = parts.profile.model
    pairs = [(f"i{k}", "a red circle") for k in range(120)]
    feats = torch.randn(len(pairs), spec.visual_tokens, spec.vision_width)
    data = CaptionData(pairs, lambda ids: feats[[int(i[1:]) for i in ids]])
    torch.manual_seed(0)
    config = TrainConfig(epochs=1, batch_size=1, warmup_steps=0)
    history = train(VisionGPT2.from_parts(parts), data, config, checkpoint_every=None)
    assert len(history["step_loss"]) == 120
    assert redraws() <= REDRAWS + 2


def flood_notebook(path: Path, bar: str, steps: int) -> Path:
    """A one-cell notebook whose loop of `steps` steps, each 2 s long on tqdm's clock, updates
    `bar` ('plain' tqdm.auto with a redraw per postfix, or vgpt's 'progress') in the kernel."""
    make, postfix = {
        "plain": (f"tqdm(range({steps}), desc='epoch', leave=False)", ""),
        "progress": (f"progress(range({steps}), desc='epoch', leave=False)", ", refresh=False"),
    }[bar]
    code = f"""import itertools
from tqdm import std
from tqdm.auto import tqdm
from vgpt.runtime import progress

clock = itertools.count(start=10**9, step=2)
std.time = lambda: float(next(clock))  # every step looks 2 s long, as on a slow machine
bar = {make}
for step in bar:
    bar.set_postfix(loss=f"{{1 / (step + 1):.3f}}"{postfix})
print("done")"""
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)]), path)
    return path


def nbval(notebook: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
               "-o", "addopts=", str(notebook)]  # fmt: skip
    return subprocess.run(command, cwd=notebook.parent, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_nbval_passes_a_long_slow_loop_with_a_vgpt_progress_bar(tmp_path):
    done = nbval(flood_notebook(tmp_path / "bounded.ipynb", "progress", 10_000))
    assert done.returncode == 0, done.stdout[-2000:]


@pytest.mark.slow
def test_nbval_times_out_on_the_same_loop_with_a_plain_tqdm_bar(tmp_path):
    """The reproduction: 10,000 slow-looking steps send about 30,000 IOPub messages while nbval
    waits for the shell reply; it then waits in vain for the cell's last messages."""
    done = nbval(flood_notebook(tmp_path / "plain.ipynb", "plain", 10_000))
    assert done.returncode != 0
    assert "Timeout of 5 seconds exceeded waiting for output" in done.stdout
