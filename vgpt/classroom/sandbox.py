"""Where a student's code runs: bubblewrap, with nothing of the grading machine in reach but what it needs.

Each sandbox is one `bwrap` process (Debian's `bubblewrap` package), started
for one student, running `runner.py` inside:

- **what it sees**, read-only (view "exercises", every exercise): the system's libraries (/usr, /lib...), the
  Python environment the grader runs in (its prefix, its base
  interpreter's, their site-packages; not PYTHONPATH), and the *runner view* of vgpt: the runner and the checkers'
  call side (`exercises/calls.py`, `wire.py`), no stage of the package, so an
  exercise cell cannot import the package's own implementation even by a
  trick. Not there: the repository and its `notebooks/` (the worked
  solutions), the teacher's source folder, the submissions, the grades file,
  the home folders. A copy of vgpt installed into the environment is covered
  by an empty folder, and so is any of those paths that lies inside a mounted
  one. The job (this student's exercise cells) and the cases' inputs (data,
  no answers) are mounted read-only at /job and /inputs. A project's check
  (view "package") sees the whole vgpt package and the tiny profile's models
  instead of the runner view, still without the repository's notebooks;
- **what it may write**: a private /tmp of `Limits.disk` bytes, gone with the
  sandbox; no network (a network namespace of its own: only its own
  loopback), its own process and IPC namespaces and host name;
- **who it is**: run by root, the runner drops to a uid of its own for each
  sandbox slot before it reads the job (bwrap sets no_new_privs, so nothing
  regains root); run by a user, bubblewrap's user namespace does the same;
- **how much**: the runner sets memory (RLIMIT_DATA), process (RLIMIT_NPROC:
  it binds because the uid is not root and, as a user, the namespace is new),
  output (RLIMIT_FSIZE) and, per exercise, CPU-time (RLIMIT_CPU) limits, and
  a wall-clock limit of its own; the grader stops a sandbox that goes quiet
  past its time (`grade.run_student`), and reads back at most `Limits.report`
  bytes per exercise.

`probe()` says whether bubblewrap works here, and if not why; the grader
refuses to run without it unless told `--no-sandbox` (then the runner runs as
a plain child process: crashes, hangs and its own limits still hold, but the
student's code can read and write what the grader can).
"""

from __future__ import annotations

import functools
import os
import shutil
import site
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import REPO_ROOT, TINY_DIR

# the runner view: the files of vgpt the sandbox gets; the package files above them go in empty
VIEW_FILES = ("classroom/runner.py", "course/exercises/calls.py", "course/exercises/wire.py")
VIEW_PACKAGES = ("", "classroom", "course", "course/exercises")
UID_BASE = 1_990_000_000  # the uids sandboxes run as when root grades: far above any real account's
BWRAP = "bwrap"


@dataclass(frozen=True)
class Limits:
    """What one sandbox may use. Memory and processes are per process and per sandbox: at most
    processes x memory in all."""

    memory: int = 2 << 30  # bytes of data (heap, anonymous maps) per process: RLIMIT_DATA
    processes: int = 6  # processes and threads of the sandbox's uid: RLIMIT_NPROC
    seconds: float = 60  # per exercise: wall clock, and CPU time (RLIMIT_CPU) unless `cpu` says otherwise
    cpu: float | None = None  # per exercise: seconds of CPU time, RLIMIT_CPU (None: `seconds`)
    output: int = 16 << 20  # bytes per file written (what the exercise prints included): RLIMIT_FSIZE
    disk: int = 64 << 20  # bytes of the private /tmp
    report: int = 32 << 20  # bytes of results read back per exercise
    startup: float = 120  # seconds for the sandbox to start and import torch

    def for_runner(self) -> dict:
        return asdict(self)


def readable(*paths: Path) -> None:
    """Folders and files the sandbox's own uid must read (the grader's umask may say otherwise)."""
    for top in paths:
        for path in [top, *Path(top).rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)


def bwrap_path() -> str | None:
    return shutil.which(BWRAP)


PACKAGE = Path(__file__).resolve().parents[1]  # the vgpt package the grader runs: what view "package" mounts


def write_view(folder: Path, view: str = "exercises") -> Path:
    """What the sandbox gets of vgpt, in `folder`. View "exercises": the runner, calls and wire, under empty
    package files. View "package" (a project's checks): mount points for the whole package and the tiny
    profile's models, which `command` binds there read-only."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "start.py").write_text("from vgpt.classroom.runner import main\n\nmain()\n")
    if view == "package":
        (folder / "vgpt").mkdir()
        (folder / "data" / "tiny").mkdir(parents=True)
        return folder
    package = PACKAGE
    for sub in VIEW_PACKAGES:
        (folder / "vgpt" / sub).mkdir(parents=True, exist_ok=True)
        (folder / "vgpt" / sub / "__init__.py").write_text("")
    for name in VIEW_FILES:
        shutil.copyfile(package / name, folder / "vgpt" / name)
    return folder


def _environment_paths() -> list[str]:
    """The folders of the Python environment the sandbox needs: its prefixes and site-packages folders.
    Not sys.path as such: a PYTHONPATH or the current folder may be the repository, notebooks and all."""
    paths = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    paths |= {os.path.realpath(p) for p in site.getsitepackages() if os.path.isdir(p)}
    kept = sorted(paths)
    return [p for p in kept if not any(p != q and p.startswith(q + os.sep) for q in kept)]


def _system_paths() -> list[tuple[str, str]]:
    """(kind, path) for the system's own folders: binds for real folders, symlinks kept as symlinks."""
    found = [("bind", "/usr")]
    for name in ("/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin"):
        if os.path.islink(name):
            found.append(("symlink", name))
        elif os.path.isdir(name):
            found.append(("bind", name))
    return found


def command(
    view: Path, job: Path, inputs: Path, uid: int | None, hide: list[Path], limits: Limits, package: bool = False
) -> list[str]:
    """The bwrap command line of one sandbox running the runner on `job`."""
    args = [bwrap_path() or BWRAP, "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    if os.geteuid() == 0:  # no user namespace: the runner drops to `uid` itself
        args += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    else:
        args += ["--unshare-all"]
    made: set[str] = set()

    def parents(path: str) -> list[str]:
        out, parts = [], path.strip("/").split("/")
        for i in range(1, len(parts)):
            folder = "/" + "/".join(parts[:i])
            if folder not in made:
                made.add(folder)
                out += ["--perms", "0755", "--dir", folder]  # bwrap would make them 0700: unreadable after the drop
        return out

    mounted = []
    for kind, path in _system_paths():
        if kind == "symlink":
            args += ["--symlink", os.readlink(path), path]
        else:
            args += parents(path) + ["--ro-bind", path, path]
            mounted.append(path)
    args += parents("/etc/ld.so.cache") + ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    # the private /tmp before the environment: an environment that lives under /tmp is bound on top of it
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--size", str(limits.disk), "--perms", "1777", "--tmpfs", "/tmp"]
    made.add("/tmp")
    for path in _environment_paths():
        if not any(path == m or path.startswith(m + os.sep) for m in mounted):
            args += parents(path) + ["--ro-bind", path, path]
            mounted.append(path)
    for folder in site.getsitepackages():  # a vgpt installed into the environment: covered by an empty folder
        if os.path.isdir(os.path.join(folder, "vgpt")):
            args += ["--tmpfs", os.path.join(os.path.realpath(folder), "vgpt")]
    for secret in [REPO_ROOT, *hide]:  # the repository, the source, the submissions, the grades, if under a mount
        real = os.path.realpath(secret)
        if os.path.isdir(real) and any(real == m or real.startswith(m + os.sep) for m in mounted):
            args += ["--tmpfs", real]
    args += ["--ro-bind", str(view), "/sandbox", "--ro-bind", str(job), "/job", "--ro-bind", str(inputs), "/inputs"]
    env = _environment(uid)
    if package:  # a project's check: the whole package and the tiny models, still read-only
        args += ["--ro-bind", str(PACKAGE), "/sandbox/vgpt", "--ro-bind", str(TINY_DIR), "/sandbox/data/tiny"]
        env.update(VGPT_TINY_DIR="/sandbox/data/tiny", VGPT_RUNS="/tmp/runs", HF_HOME="/tmp/huggingface")
    args += ["--chdir", "/tmp", "--clearenv"]
    for name, value in env.items():
        args += ["--setenv", name, value]
    return args + ["--", sys.executable, "-E", "-s", "/sandbox/start.py", "/job", "/inputs"]


def _environment(uid: int | None) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",  # one thread each: sandboxes run side by side on few cores
        "MKL_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if uid is not None:
        env["VGPT_SANDBOX_UID"] = str(uid)
    return env


def slot_uid(slot: int) -> int | None:
    """The uid a sandbox in this slot runs as when root grades (else None: bubblewrap maps the user's own)."""
    if os.geteuid() != 0:
        return None
    return UID_BASE + (os.getpid() % 10_000) * 64 + slot  # two graders at once keep apart too


def plain_command(view: Path, job: Path, inputs: Path, package: bool = False) -> tuple[list[str], dict[str, str]]:
    """--no-sandbox: the runner as a plain child process, with the view's vgpt first on its path (the grader's
    own package for a project's check)."""
    env = dict(os.environ, **_environment(None))
    if package:
        env["PYTHONPATH"] = str(PACKAGE.parent)
        return [sys.executable, "-s", str(view / "start.py"), str(job), str(inputs)], env
    return [sys.executable, "-E", "-s", str(view / "start.py"), str(job), str(inputs)], env


@functools.cache
def probe() -> str | None:
    """None if a sandbox starts here, else why not (one line)."""
    if sys.platform != "linux":
        return f"no sandbox on {sys.platform}: the grader's sandbox is bubblewrap, which runs on Linux only"
    if not bwrap_path():
        return "bubblewrap is not installed (bwrap not found): apt-get install bubblewrap"
    with tempfile.TemporaryDirectory(prefix="vgpt-probe-") as tmp:
        tmp = Path(tmp)
        view = write_view(tmp / "view")
        (tmp / "job").mkdir()
        (tmp / "job" / "job.json").write_text('{"probe": true}')
        (tmp / "inputs").mkdir()
        readable(tmp)
        argv = command(view, tmp / "job", tmp / "inputs", slot_uid(0), [], Limits())
        try:
            run = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as err:
            return f"bubblewrap did not run: {err}"
    if run.returncode != 0 or '"event": "probe"' not in run.stdout:
        said = (run.stderr.strip().splitlines() or [f"exit code {run.returncode}"])[-1]
        return f"bubblewrap does not start a sandbox here: {said}"
    return None
