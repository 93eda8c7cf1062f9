"""The figures the README and the notebooks state, as .ci/stated_figures.json lists them: each one is
stated with its range where the list says, the ranges agree with the shipped records they come from,
and the check that re-measures them (.ci/stated_figures.py) fails a value outside its range."""

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

from vgpt.course import experiments

ROOT = Path(__file__).resolve().parents[1]
STATED = json.loads((ROOT / ".ci" / "stated_figures.json").read_text())


def script():
    spec = importlib.util.spec_from_file_location("stated_figures", ROOT / ".ci" / "stated_figures.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def prose(path: Path) -> str:
    """A file's text as a reader sees it, whitespace collapsed: a notebook's markdown cells, or the file."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    else:
        text = path.read_text()
    return re.sub(r"\s+", " ", text)


def statements():
    for figure in STATED["figures"]:
        for where in figure["stated"]:
            yield pytest.param(figure, where, id=f"{figure['id']}@{where['file']}")


@pytest.mark.parametrize(("figure", "where"), list(statements()))
def test_each_figure_is_stated_with_its_range(figure, where):
    path = ROOT / where["file"]
    if "json" in where:  # a shipped record: its value lies in the range
        value = json.loads(path.read_text())
        for key in where["json"].split("."):
            value = value[key]
        assert figure["low"] <= value <= figure["high"], f"{where['file']} {where['json']} = {value}"
    else:
        text = re.sub(r"\s+", " ", where["text"].format(low=figure["low"], high=figure["high"]))
        assert text in prose(path), f"{where['file']} does not say {text!r}"


def test_every_measurement_and_key_is_one_the_script_knows():
    known = {"bridge-500", "bridge-300", "baseline-09", "notebook-06", "demo", "demo-quick"}
    for figure in STATED["figures"]:
        for use in (figure, figure.get("quick", figure)):
            assert use["measure"] in known and use["low"] <= use["high"], figure["id"]
    kernels = {v["kernel"] for v in STATED["variants"]}
    threads = {v["threads"] for v in STATED["variants"]}
    assert "default" in kernels and len(kernels) == 2 and len(threads) == 2  # a second path, a second count


def test_the_baseline_ranges_are_the_notebook_check_band():
    """Notebook 09's check passes a baseline run within `experiments.band` of the shipped runs: the
    range stated for the baseline is that band, so the prose, the check and this list agree."""
    spread = experiments.load_spread()
    baseline = [f for f in STATED["figures"] if f["measure"] == "baseline-09"]
    assert {f["key"] for f in baseline} == {"final loss", "test exact"}
    for figure in baseline:
        assert (figure["low"], figure["high"]) == experiments.band(spread, figure["key"]), figure["id"]


def test_the_check_fails_a_value_outside_its_range(monkeypatch):
    module = script()
    stated = {"variants": [{"kernel": "native", "threads": 1}, {"kernel": "default", "threads": 2}],
              "figures": [{"id": "x", "measure": "bridge-300", "key": "test exact", "low": 0.9, "high": 1.0,
                           "stated": []}]}  # fmt: skip
    values = iter([{"test exact": 0.95}, {"test exact": 0.85}])
    monkeypatch.setattr(module, "run_variant", lambda name, variant: (next(values), 0.0))
    wrong = module.check(stated, full=False, only=None, log=lambda *_: None)
    assert len(wrong) == 1 and "0.8500" in wrong[0] and "'default'" in wrong[0]


@pytest.mark.slow
def test_the_shipped_bridge_figures_hold_on_both_variants():
    """The script end to end on its cheapest measurement: two processes, two kernel paths."""
    import subprocess

    done = subprocess.run([sys.executable, str(ROOT / ".ci" / "stated_figures.py"), "--only", "bridge-300"],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every stated figure within its range" in done.stdout
    assert done.stdout.count("bridge-300") >= 4  # two figures on each of two variants
