"""Colab: one opt-in place where the work is kept, the seed's data from the Hub when no folder is there,
a trained bridge where notebook 06 never ran, and every notebook run alone on a simulated Colab machine
(.ci/colab_simulation.py: a fresh kernel, an empty folder, the bootstrap cloning this working tree)."""

import importlib.util
import os
import sys
import types
from pathlib import Path

import pytest
import torch

from vgpt.config import REPO_ROOT, TINY
from vgpt.course import notebook

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fresh_notebook_state(monkeypatch, tmp_path):
    """notebook.RUNS and DATA restored after the test; no VGPT_* variable; Colab's /content in tmp_path."""
    for name in ("VGPT_RUNS", "VGPT_DATA", "HF_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(notebook, "RUNS", notebook.RUNS)
    monkeypatch.setattr(notebook, "DATA", notebook.DATA)
    monkeypatch.setenv("VGPT_CONTENT", str(tmp_path / "content"))
    return tmp_path


@pytest.fixture
def on_colab(monkeypatch, tmp_path):
    """A stand-in google.colab whose drive.mount links MyDrive to tmp_path/drive, as the simulation's does."""
    mounted = []

    def mount(mountpoint, force_remount=False):
        mounted.append(mountpoint)
        Path(mountpoint).mkdir(parents=True, exist_ok=True)
        if not (Path(mountpoint) / "MyDrive").exists():
            (tmp_path / "drive").mkdir()
            (Path(mountpoint) / "MyDrive").symlink_to(tmp_path / "drive")

    google = types.ModuleType("google")
    package = types.ModuleType("google.colab")
    package.drive = types.SimpleNamespace(mount=mount)
    google.colab = package
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", package)
    monkeypatch.setitem(sys.modules, "google.colab.drive", package.drive)
    return mounted


def test_off_colab_work_stays_in_the_repository_and_drive_is_refused_politely(fresh_notebook_state, capsys):
    notebook.keep_work(on_drive=True)
    out = capsys.readouterr().out
    assert notebook.RUNS == REPO_ROOT / "runs" / "notebooks"
    assert "work is kept in runs/notebooks\n" in out and "Google Drive is there only on Colab" in out
    assert notebook.DATA == "ariG23498/flickr8k" and "Flickr8k for the seed profile: ariG23498/flickr8k" in out


def test_on_colab_without_drive_work_goes_to_content_and_the_user_hears_it_vanishes(
    fresh_notebook_state, on_colab, capsys
):
    notebook.keep_work(on_drive=False)
    assert notebook.RUNS == fresh_notebook_state / "content" / "vgpt-work" and notebook.RUNS.is_dir()
    assert "vanishes when the runtime is recycled; keep_work(on_drive=True)" in capsys.readouterr().out
    assert on_colab == []
    assert notebook.run_folder(TINY) == notebook.RUNS / "tiny"


@pytest.mark.parametrize(
    ("gpu", "profile", "warned"),
    [(True, None, True), (False, None, False), (True, "tiny", False), (False, "seed-plus", True)],
)
def test_on_colab_without_drive_a_learner_headed_for_seed_is_told_to_keep_the_work_on_drive(
    fresh_notebook_state, on_colab, monkeypatch, capsys, gpu, profile, warned
):
    # auto picks seed on a GPU (the Hub answers on Colab); VGPT_PROFILE decides where it is set
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    if profile:
        monkeypatch.setenv("VGPT_PROFILE", profile)
    else:
        monkeypatch.delenv("VGPT_PROFILE", raising=False)
    notebook.keep_work(on_drive=False)
    out = capsys.readouterr().out
    assert ("this runtime will run the seed profile" in out) is warned, out
    assert ("set on_drive=True in this cell of every notebook" in out) is warned
    notebook.keep_work(on_drive=True)  # on Drive nothing is lost: no warning
    assert "will run the seed profile" not in capsys.readouterr().out


def test_on_colab_with_drive_work_and_hugging_face_downloads_go_to_my_drive(
    fresh_notebook_state, on_colab, monkeypatch, capsys
):
    for name in ("huggingface_hub", "transformers", "datasets"):  # as in a fresh kernel: not imported yet
        monkeypatch.delitem(sys.modules, name, raising=False)
    notebook.keep_work(on_drive=True)
    drive = fresh_notebook_state / "content" / "drive" / "MyDrive" / "vgpt"
    assert on_colab == [str(fresh_notebook_state / "content" / "drive")]
    assert notebook.RUNS == drive and (fresh_notebook_state / "drive" / "vgpt").is_dir()
    assert os.environ["HF_HOME"] == str(drive / "huggingface")
    out = capsys.readouterr().out
    assert f"work is kept on Google Drive: {drive}" in out and "Hugging Face downloads" in out
    notebook.keep_work(on_drive=True)  # run again: mounted already, the same folder, HF_HOME unchanged
    assert notebook.RUNS == drive and len(on_colab) == 2


def test_drive_chosen_after_the_models_loaded_keeps_the_work_there_and_says_what_did_not_move(
    fresh_notebook_state, on_colab, capsys
):
    import transformers  # noqa: F401  (loaded: it has read HF_HOME already)

    notebook.keep_work(on_drive=True)
    assert "HF_HOME" not in os.environ
    assert "restart the session and run this cell before any other" in capsys.readouterr().out


def test_vgpt_runs_wins_everywhere(fresh_notebook_state, on_colab, monkeypatch, capsys):
    monkeypatch.setenv("VGPT_RUNS", str(fresh_notebook_state / "graded"))
    notebook.keep_work(on_drive=True)
    assert notebook.RUNS == fresh_notebook_state / "graded" and on_colab == []
    assert "(the VGPT_RUNS variable)" in capsys.readouterr().out


def test_seed_data_is_a_flickr8k_folder_in_the_work_folder_else_vgpt_data_else_the_hub(
    fresh_notebook_state, monkeypatch
):
    work = fresh_notebook_state / "work"
    assert notebook.seed_data(work) == "ariG23498/flickr8k"
    (work / "flickr8k").mkdir(parents=True)
    assert notebook.seed_data(work) == work / "flickr8k"
    monkeypatch.setenv("VGPT_DATA", "someone/captions")
    assert notebook.seed_data(work) == "someone/captions"


def test_without_a_bridge_from_notebook_06_load_trained_says_so_trains_a_quick_one_and_finds_it_next_time(
    fresh_notebook_state, capsys
):
    from vgpt.loading import load_profile
    from vgpt.model import VisionGPT2

    notebook.RUNS = fresh_notebook_state / "work"
    parts = load_profile("tiny", verbose=False)
    model = notebook.load_trained(parts, mine=True)
    out = capsys.readouterr().out
    assert "no bridge from notebook 06 at" in out and "run notebook 06 first" in out
    assert "one epoch over 500 training images, 8 steps" in out  # tiny trains 64 captions a step
    assert out.rstrip().endswith(f"bridge: {notebook.RUNS / 'tiny' / 'quick' / 'bridge'}")
    assert isinstance(model, VisionGPT2) and not model.training
    assert next(parts.vision.parameters()).device.type == "cpu"
    assert not hasattr(parts.vision, "peft_config")

    again = notebook.load_trained(load_profile("tiny", verbose=False), mine=True)
    assert "taking the quick one trained here before" in capsys.readouterr().out
    for a, b in zip(model.projector.parameters(), again.projector.parameters(), strict=True):
        assert (a == b).all()


# ------------------------------------------------------------------ Colab, simulated

SIMULATION = ROOT / ".ci" / "colab_simulation.py"
SEED_OPT_IN = "VGPT_COLAB_SEED"


def load_simulation():
    spec = importlib.util.spec_from_file_location("colab_simulation", SIMULATION)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there (Python 3.11)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def simulated_colab(tmp_path_factory):
    """One simulated Colab setup for the module: the repository snapshot, the kernels' environment, the
    stand-in google.colab, the Drive folder. Every notebook still gets its own kernel and folder."""
    simulation = load_simulation()
    root = tmp_path_factory.mktemp("colab")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(
            "JUPYTER_PATH", os.pathsep.join(filter(None, [str(root / "jupyter"), os.environ.get("JUPYTER_PATH")]))
        )
        machine = simulation.make_machine(root)
        yield simulation, machine
        print("\n" + simulation.table(machine))


all_opt_in = pytest.mark.skipif(
    os.environ.get(SEED_OPT_IN) != "1",
    reason=f"opt-in: {SEED_OPT_IN}=1 runs every notebook (CI runs them through the script, each cell twice)",
)
seed_opt_in = pytest.mark.skipif(
    os.environ.get(SEED_OPT_IN) != "1",
    reason=f"opt-in: {SEED_OPT_IN}=1 runs the seed stand-in (about 22 min; CI runs it through the script)",
)


def test_a_notebook_runs_to_the_end_alone_on_a_fresh_simulated_colab_machine(simulated_colab):
    """The simulation itself, on one short notebook: CI runs all of them, each cell twice, through the
    script (`.ci/colab_simulation.py --run tiny --reruns`), and the seed runs."""
    simulation, machine = simulated_colab
    results = simulation.run_set(machine, "tiny", only=["04"])
    assert [stem for stem, _, _ in results] == ["04_joint_attention_mask"]
    failed = [f"{stem}: {status}" for stem, _, status in results if status != "ok"]
    assert not failed, "\n".join(failed) + f"\n(executed notebooks in {machine.root / 'out'})"


@pytest.mark.parametrize(
    "run", [pytest.param("tiny", marks=all_opt_in), pytest.param("seed", marks=seed_opt_in),
            pytest.param("seed-quick", marks=seed_opt_in)],
)  # fmt: skip
def test_every_notebook_runs_to_the_end_alone_on_a_fresh_simulated_colab_machine(simulated_colab, run):
    simulation, machine = simulated_colab
    results = simulation.run_set(machine, run)
    failed = [f"{stem}: {status}" for stem, _, status in results if status != "ok"]
    assert results and not failed, "\n".join(failed) + f"\n(executed notebooks in {machine.root / 'out'})"
