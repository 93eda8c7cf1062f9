"""Colab, simulated: each notebook runs alone, as on a fresh Colab machine, and must run to the end.

    python .ci/colab_simulation.py                     # every run below, in turn; prints a table
    python .ci/colab_simulation.py --run tiny 00 07    # one run, two notebooks
    python .ci/colab_simulation.py --keep /tmp/colab   # keep the folders (executed notebooks in out/)
    python .ci/colab_simulation.py --run tiny --reruns # every cell twice, then Run All again (CI's way)

What a Colab user meets, and what stands in for it here:

    Colab                                  the simulation
    a fresh machine per notebook           a fresh kernel in an empty working folder per notebook
    /content                               that folder (VGPT_CONTENT)
    google.colab imported at startup       a stand-in package on the kernel's PYTHONPATH, imported
                                           before the first cell (IPKernelApp.exec_lines)
    drive.mount("/content/drive")          links MyDrive to one "Drive" folder of the whole run: the
                                           only thing notebooks share
    git clone github.com/vgpt-course/vgpt  VGPT_REPO: a git snapshot of this working tree, uncommitted
                                           changes included
    %pip install -e vgpt[hf]               into a virtual environment made once per run, which sees
                                           the packages of the interpreter running this (a .pth line),
                                           so nothing is downloaded and that environment stays as it is
    the Hugging Face Hub                   none (HF_HUB_OFFLINE=1); for `seed`, the stand-in Hub of
                                           .ci/seed_notebooks.py (the seed's architectures at random
                                           weights) and a miniature `ariG23498/flickr8k`, prepared in
                                           the Hugging Face caches as if downloaded

The notebooks run with cells 1 and 2 as .ci/notebook_bootstrap.py writes them (the same as
committed once it has run; tests/test_notebooks.py checks that). Runs, each notebook alone, in order:

    tiny        no Drive (the keep-work cell as committed); 07 and 08 take the shipped bridge
    seed        Drive on (the user's edit: on_drive=True), with the Hugging Face downloads already on
                it; 06 leaves its bridge there for 07 and 08
    seed-quick  08 alone, no Drive: no bridge from 06, so it trains the quick bridge in place
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KERNEL = "colab-simulation"
KEEP_WORK_LOCAL = "notebook.keep_work(on_drive=False)"
KEEP_WORK_DRIVE = "notebook.keep_work(on_drive=True)"
STEMS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

STAND_IN_COLAB = {
    "google/__init__.py": "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n",
    "google/colab/__init__.py": '"""Stand-in for Colab\'s google.colab: its import says "on Colab"."""\n',
    "google/colab/drive.py": '''"""Stand-in for google.colab.drive: MyDrive links to the simulation's Drive folder."""
import os


def mount(mountpoint, force_remount=False, timeout_ms=120000, readonly=False):
    my_drive = os.path.join(mountpoint, "MyDrive")
    if os.path.exists(my_drive) and not force_remount:
        print(f"Drive already mounted at {mountpoint}; to attempt to forcibly remount, call "
              f'drive.mount("{mountpoint}", force_remount=True).')
        return
    os.makedirs(mountpoint, exist_ok=True)
    os.symlink(os.environ["VGPT_SIMULATED_DRIVE"], my_drive)
    print(f"Mounted at {mountpoint}")


def flush_and_unmount(timeout_ms=86400000):
    pass
''',
}


@dataclass
class Machine:
    """What every simulated Colab machine starts from: the repository to clone, the interpreter, the
    stand-in google.colab, the kernel spec, and the one Drive folder."""

    root: Path
    repo_url: str
    python: Path
    colab: Path
    jupyter: Path
    drive: Path
    hf_home: Path | None = None  # the stand-in Hugging Face caches (seed)
    extra_env: dict[str, str] = field(default_factory=dict)  # --env KEY=VALUE: more for every kernel
    reruns: bool = False  # --reruns: every cell twice, then Run All again (a learner inspecting tensors)
    # (run, notebook, wall seconds, CPU seconds of the kernel and what it ran, "ok" or the error)
    times: list[tuple[str, str, float, float, str]] = field(default_factory=list)


def snapshot_repository(dest: Path) -> str:
    """A git repository holding this working tree as it is (tracked and untracked, not ignored files),
    committed, so that `git clone --depth 1` gets what is being tested."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    git = ["git", "-c", "user.name=simulation", "-c", "user.email=simulation@localhost", "-C", str(dest)]
    for command in (["init", "--quiet"], ["add", "--all"], ["commit", "--quiet", "-m", "snapshot"]):
        subprocess.run(git + command, check=True, capture_output=True)
    return dest.as_uri()


def make_venv(dest: Path) -> Path:
    """A virtual environment for the kernels, seeing this interpreter's packages through a .pth line
    (not its .pth files: the editable vgpt installed here stays out), so that the bootstrap's
    `%pip install -e` installs vgpt there and not into the environment running this."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(dest)], check=True)
    python = dest / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    (Path(purelib) / "colab_simulation_base.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def make_machine(root: Path) -> Machine:
    (root / "repo").mkdir(parents=True)
    colab = root / "stand-in-colab"
    for name, text in STAND_IN_COLAB.items():
        (colab / name).parent.mkdir(parents=True, exist_ok=True)
        (colab / name).write_text(text)
    python = make_venv(root / "venv")
    spec = root / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}",
            "--IPKernelApp.exec_lines=import google.colab"]  # fmt: skip
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))
    (root / "drive").mkdir()
    return Machine(root, snapshot_repository(root / "repo"), python, colab, root / "jupyter", root / "drive")


# ------------------------------------------------------------------ the seed stand-in


def _script(name: str):
    """A module of .ci/ (not a package): its functions, without running it."""
    spec = importlib.util.spec_from_file_location(name, ROOT / ".ci" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there (Python 3.11)
    spec.loader.exec_module(module)
    return module


def _seed_notebooks():
    return _script("seed_notebooks")


def _bootstrap():
    return _script("notebook_bootstrap")


def mini_hub_flickr8k(hf_home: Path, counts=(("train", 16), ("val", 4), ("test", 8))) -> None:
    """`ariG23498/flickr8k` as `datasets` leaves it once downloaded: one caption per row (image, caption),
    one split; Shapes World images with file names chosen so that vgpt's split by name hash gives
    `counts` images per split, five captions each."""
    import datasets
    from datasets.packaged_modules.parquet.parquet import Parquet

    from vgpt.data import split_of_image
    from vgpt.world import shapes

    wanted, rows, k = dict(counts), [], 0
    scenes = iter(shapes.generate("train", 10_000, seed=9))
    while any(wanted.values()):
        name, k = f"{1000 + k}_mini.jpg", k + 1
        if wanted[split_of_image(name)] == 0:
            continue
        wanted[split_of_image(name)] -= 1
        scene, data = next(scenes), io.BytesIO()
        scene.render(160).save(data, format="JPEG")
        for lead in ("", "there is ", "look: ", "we see ", "it shows "):
            rows.append({"image": {"bytes": data.getvalue(), "path": name}, "caption": lead + scene.caption})
    features = datasets.Features({"image": datasets.Image(), "caption": datasets.Value("string")})
    parquet = hf_home / "mini-flickr8k.parquet"
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(parquet))
    cache = hf_home / "datasets"
    builder = Parquet(cache_dir=str(cache), dataset_name="flickr8k", config_name="default",
                      data_files={"train": str(parquet)}, features=features, hash="0" * 16)  # fmt: skip
    builder.download_and_prepare()
    # the folder names `load_dataset("ariG23498/flickr8k")` looks for offline
    built = next((cache / "flickr8k").iterdir())
    built.rename(cache / "flickr8k" / "default")
    (cache / "flickr8k").rename(cache / "ariG23498___flickr8k")
    parquet.unlink()


def seed_stand_in(hf_home: Path) -> None:
    """The seed's models at random weights in a Hugging Face cache, and the miniature Flickr8k."""
    _seed_notebooks().stand_in_hub(hf_home / "hub")
    mini_hub_flickr8k(hf_home)


# ------------------------------------------------------------------ one notebook on one machine


def kernel_env(machine: Machine, content: Path, profile: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VGPT_", "HF_", "PIP_", "JUPYTER_", "IPYTHON"))}
    env.update(
        PATH=f"{machine.python.parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(machine.colab),
        IPYTHONDIR=str(content.parent / "ipython"),
        VGPT_REPO=machine.repo_url,
        VGPT_CONTENT=str(content),
        VGPT_SIMULATED_DRIVE=str(machine.drive),
        VGPT_PROFILE=profile,
        HF_HUB_OFFLINE="1",
        TQDM_DISABLE="1",
        PIP_NO_INDEX="1",  # nothing is downloaded: every requirement is installed already
        PIP_NO_BUILD_ISOLATION="0",  # (sic) build with the setuptools at hand, offline
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_CACHE_DIR="1",
    )
    if machine.hf_home:
        env["HF_HOME"] = str(machine.hf_home)  # "downloaded" already; on Drive, keep_work moves it there
    return env | machine.extra_env


def execute(client, env: dict, reruns: bool) -> None:
    """Run the notebook; with `reruns`, as a learner does who reruns cells to inspect tensors: every code
    cell twice in a row, then "Run All" again, in one kernel."""
    if not reruns:
        client.execute(env=env)
        return
    code = [(i, c) for i, c in enumerate(client.nb.cells) if c.cell_type == "code"]
    with client.setup_kernel(env=env):
        for rounds, plan in (("each cell twice", [x for x in code for _ in range(2)]), ("Run All again", code)):
            for index, cell in plan:
                try:
                    client.execute_cell(cell, index)
                except Exception as err:
                    raise RuntimeError(f"{rounds}, cell {index}: {str(err).strip().splitlines()[-1]}") from err


def run_alone(machine: Machine, stem: str, run: str, profile: str, on_drive: bool, out: Path) -> tuple[float, str]:
    """Execute one notebook in a fresh kernel and an empty folder; (seconds, "ok" or the error's last line)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    _bootstrap().rewrite(nb, "")  # cells 1 and 2 as the script writes them: no change once it has run
    if on_drive:  # what the user does in the keep-work cell
        for cell in nb.cells:
            if cell.cell_type == "code" and KEEP_WORK_LOCAL in cell.source:
                cell.source = cell.source.replace(KEEP_WORK_LOCAL, KEEP_WORK_DRIVE)
                break
        else:
            return 0.0, f"no `{KEEP_WORK_LOCAL}` cell to switch to Drive"
    content = machine.root / "machines" / run / stem / "content"
    content.mkdir(parents=True)
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=1800, startup_timeout=180,
                            resources={"metadata": {"path": str(content)}})  # fmt: skip
    start, cpu, status = time.perf_counter(), _children_cpu(), "ok"
    try:
        execute(client, kernel_env(machine, content, profile), machine.reruns)
    except Exception as err:  # report it, go on with the next notebook
        status = (str(err).strip().splitlines() or [repr(err)])[-1][:300]
    seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    if status == "ok" and EXPECT.get((run, stem), "") not in printed:
        status = f"its output does not say {EXPECT[run, stem]!r}"
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out / f"{run}-{stem}.ipynb")
    machine.times.append((run, stem, seconds, cpu, status))
    print(f"{run:<11}{stem:<28}{seconds:7.1f} s wall {cpu:7.1f} s CPU  {status}", flush=True)
    return seconds, status


def _children_cpu() -> float:
    """CPU seconds of this process's finished children: a kernel counts once it has shut down. Unlike
    wall time, it hardly depends on what else the machine is doing."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


# What a notebook must print on a run, beyond running: with the work on Drive, notebook 10 finds every part
# that the checkers of 01-08 kept, each of those notebooks having run on a machine of its own.
EXPECT = {("seed", "10_your_captioner"): "11 of 11 parts are yours."}

RUNS = {  # run -> (profile, Drive on, the notebooks it runs, or None for all)
    "tiny": ("tiny", False, None),
    "seed": ("seed", True, None),
    "seed-quick": ("seed", False, ["08_evaluation_and_demo"]),
}


def prepare(machine: Machine, run: str) -> None:
    """What a run needs before its first notebook: for `seed`, the stand-in Hub and Flickr8k (once),
    already on the Drive too, as after an earlier day's downloads."""
    if RUNS[run][0] != "seed" or machine.hf_home is not None:
        return
    start, cpu = time.perf_counter(), time.process_time()
    machine.hf_home = machine.root / "hf"
    seed_stand_in(machine.hf_home)
    (machine.drive / "vgpt").mkdir(exist_ok=True)
    (machine.drive / "vgpt" / "huggingface").symlink_to(machine.hf_home)
    spent = time.perf_counter() - start, time.process_time() - cpu
    machine.times.append(("seed", "(stand-in Hub and Flickr8k)", *spent, "ok"))


def run_set(machine: Machine, run: str, only: list[str] | None = None) -> list[tuple[str, float, str]]:
    """Every notebook of one run (or those in `only`: numbers or stems), each alone, in order."""
    prepare(machine, run)
    profile, on_drive, stems = RUNS[run]
    chosen = [s for s in stems or STEMS if only is None or s[:2] in only or s in only]
    return [(s, *run_alone(machine, s, run, profile, on_drive, machine.root / "out")) for s in chosen]


def simulate(root: Path, runs: list[str], only: list[str] | None = None, env: dict | None = None,
             reruns: bool = False) -> Machine:  # fmt: skip
    """Every notebook of each run alone, in order; returns the machine with its times."""
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(root / "jupyter"), os.environ.get("JUPYTER_PATH")]))
    machine = make_machine(root)
    machine.extra_env, machine.reruns = dict(env or {}), reruns
    for run in runs:
        run_set(machine, run, only)
    return machine


def table(machine: Machine) -> str:
    """Markdown: one row per notebook, wall and CPU seconds per run."""
    runs = list(dict.fromkeys(run for run, *_ in machine.times))
    stems = sorted(dict.fromkeys(stem for _, stem, *_ in machine.times), key=lambda s: (s[0].isdigit(), s))
    cell = {(run, stem): (wall, cpu, status) for run, stem, wall, cpu, status in machine.times}
    head = " | ".join(f"{run} wall s | {run} CPU s" for run in runs)
    lines = [f"| notebook | {head} |", "|---" * (2 * len(runs) + 1) + "|"]
    for stem in stems:
        shown = []
        for run in runs:
            wall, cpu, status = cell.get((run, stem), (None, None, "ok"))
            failed = "" if status == "ok" else " FAILED"
            shown += ["", ""] if wall is None else [f"{wall:.0f}{failed}", f"{cpu:.0f}"]
        lines.append(f"| {stem} | " + " | ".join(shown) + " |")
    totals = []
    for run in runs:
        totals += [f"{sum(t[2] for t in machine.times if t[0] == run):.0f}"]
        totals += [f"{sum(t[3] for t in machine.times if t[0] == run):.0f}"]
    lines.append("| all | " + " | ".join(totals) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="numbers or stems (default: all)")
    parser.add_argument("--run", action="append", choices=list(RUNS), help="a run (repeatable; default: all)")
    parser.add_argument("--keep", help="work in this new folder and keep it")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="more for every kernel")
    parser.add_argument("--reruns", action="store_true", help="every cell twice in a row, then Run All again")
    args = parser.parse_args(argv)
    runs = args.run or list(RUNS)
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="vgpt-colab-"))
    try:
        machine = simulate(root, runs, args.notebooks or None, dict(e.split("=", 1) for e in args.env), args.reruns)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(table(machine))
    return 1 if any(t[-1] != "ok" for t in machine.times) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
