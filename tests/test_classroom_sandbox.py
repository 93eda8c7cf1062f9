"""The sandbox on this machine, probed from inside: what a student's code sees, may write, may reach and
may use. Each probe is an exercise cell defining `probe()`, run the way the grader runs a student's cell;
what it returns comes back as data. One sandbox runs them all, in order (so the last probes also see what
the earlier ones left behind)."""

import base64
import socket
import sys
import tempfile
from pathlib import Path

import pytest
from classroom_fixtures import needs_sandbox

from vgpt.classroom import sandbox
from vgpt.classroom.exercise_cells import Check
from vgpt.classroom.grade import Grading, Task
from vgpt.classroom.sandbox import Limits
from vgpt.config import REPO_ROOT
from vgpt.course.exercises import wire
from vgpt.course.exercises.grading import Case, Checker


@pytest.fixture(autouse=True, scope="module")
def _sandbox():
    needs_sandbox()


PROBES = {
    "identity": """
import os, socket
def probe():
    status = dict(line.split(':', 1) for line in open('/proc/self/status').read().splitlines())
    return {'uid': os.getuid(), 'euid': os.geteuid(), 'caps': status['CapEff'].strip(),
            'no_new_privs': status['NoNewPrivs'].strip(), 'hostname': socket.gethostname(),
            'processes': sorted(int(p) for p in os.listdir('/proc') if p.isdigit()), 'pid': os.getpid()}
""",
    "files": """
import importlib.util, os, sys
def probe(secrets, home):
    import vgpt
    return {'secrets': {s: os.path.exists(s) for s in secrets}, 'root': sorted(os.listdir('/')),
            'view': sorted(os.listdir(os.path.dirname(vgpt.__file__))),
            'stage': importlib.util.find_spec('vgpt.masks') is not None, 'etc': sorted(os.listdir('/etc')),
            'home': os.path.expanduser('~'), 'grader_home': os.listdir(home) if os.path.isdir(home) else None}
""",
    "writes": """
import os, sys
def probe():
    found = {}
    for folder in ('/tmp', '/usr', '/sandbox', '/job', '/inputs', sys.prefix, '/'):
        try:
            with open(os.path.join(folder, 'written-by-a-student'), 'w') as f:
                f.write('x')
            found[folder] = 'written'
        except OSError as err:
            found[folder] = type(err).__name__
    return found
""",
    "disk": """
def probe():
    written = 0
    try:
        for n in range(20):  # 20 files of 8 MB: more than /tmp holds
            with open(f'/tmp/fill-{n}', 'wb') as f:
                for _ in range(8):
                    f.write(b'x' * (1 << 20))
                    written += 1 << 20
    except OSError as err:
        return [written, err.errno]
    return [written, None]
""",
    "writes-after-disk": None,
    "network": """
import socket
def probe(port):
    found = {}
    for name, address in (('loopback', ('127.0.0.1', port)), ('outside', ('1.1.1.1', 53))):
        try:
            socket.create_connection(address, timeout=2).close()
            found[name] = 'connected'
        except OSError as err:
            found[name] = type(err).__name__
    found['interfaces'] = sorted(line.split(':')[0].strip() for line in open('/proc/net/dev').readlines()[2:])
    return found
""",
    "fork": """
import os, time
def probe():
    started = 0
    try:
        for _ in range(64):
            if os.fork() == 0:
                time.sleep(30)
                os._exit(0)
            started += 1
    except OSError as err:
        return [started, type(err).__name__]
    return [started, None]
""",
    "threads": """
import threading, time
def probe():
    started = 0
    try:
        for _ in range(64):
            threading.Thread(target=time.sleep, args=(2,), daemon=True).start()
            started += 1
    except RuntimeError as err:
        return [started, str(err)]
    return [started, None]
""",
    "memory": """
def probe():
    hoard = []
    try:
        for _ in range(32):  # 4 GiB at most
            hoard.append(bytearray(128 << 20))
    except MemoryError:
        return len(hoard) * (128 << 20)
    return len(hoard) * (128 << 20)
""",
    "leave": """
import subprocess
def probe():
    open('/tmp/left-behind', 'w').write('a file')
    return subprocess.Popen(['sleep', '100.5']).pid
""",
    "after": """
import os
def probe():
    running = [p for p in os.listdir('/proc') if p.isdigit() and b'100.5' in open(f'/proc/{p}/cmdline', 'rb').read()]
    return {'running': running, 'files': sorted(os.listdir('/tmp'))}
""",
}


def run_probes(probes: dict[str, str], args: dict[str, tuple], limits: Limits, hide=()) -> dict[str, object]:
    """Each probe as one exercise of one sandbox: name -> what probe() returned (a wire.Raised if it raised),
    or the runner's outcome when it reported no result."""
    checkers = {name: Checker("probe", lambda a=a: [Case("probe", a, lambda got: None)])
                for name, a in ((name, args.get(name, ())) for name in probes)}  # fmt: skip
    check = Check("probe", "probe", "probe", 1.0, "tests", "check_probe", "probes", "")
    tasks = [Task("probe", "probes", check, source, name) for name, source in probes.items()]
    with tempfile.TemporaryDirectory() as tmp:
        grading = Grading(Path(tmp), checkers, True, limits, list(hide))
        grading.slots.put(0)
        outcomes = grading.run_student(tasks)
    found = {}
    for name, outcome in zip(probes, outcomes, strict=True):
        if outcome[0] != "result":
            found[name] = outcome
            continue
        data = wire.loads(base64.b64decode(outcome[1]))
        found[name] = data["results"][0] if data.get("defined") else data
    return found


@pytest.fixture(scope="module")
def seen(tmp_path_factory):
    secret = tmp_path_factory.mktemp("teacher")
    (secret / "solutions.txt").write_text("42")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0)
    # the repository's files (its folder may be there, holding only the way to a venv made inside it, as CI's)
    secrets = [str(REPO_ROOT / "README.md"), str(REPO_ROOT / "vgpt" / "model.py"), str(REPO_ROOT / "notebooks"),
               str(secret), "/etc/passwd"]  # fmt: skip
    args = {"files": (secrets, str(Path.home())), "network": (listener.getsockname()[1],)}
    probes = {name: source or PROBES["writes"] for name, source in PROBES.items()}
    found = run_probes(probes, args, Limits(seconds=20))
    try:
        listener.accept()
        found["listener"] = "reached"
    except BlockingIOError:
        found["listener"] = "untouched"
    listener.close()
    return found


def test_the_student_is_nobody_here_without_privileges(seen):
    who = seen["identity"]
    assert who["uid"] != 0 and who["euid"] != 0 and who["caps"] == "0000000000000000" and who["no_new_privs"] == "1"
    assert who["hostname"] == "sandbox"
    assert who["pid"] < 10 and len(who["processes"]) < 10  # its own process namespace: the machine's are not there


def test_the_solutions_the_repository_and_the_home_folder_are_out_of_sight(seen):
    files = seen["files"]
    assert files["secrets"] == dict.fromkeys(files["secrets"], False)
    assert files["view"] == ["__init__.py", "classroom", "course"]  # vgpt is the runner view only
    assert files["stage"] is False  # no stage of the package: `import vgpt.masks` finds nothing
    assert files["etc"] == ["ld.so.cache"] and files["home"] == "/tmp"
    # the grader's home: absent, or (where Python is installed inside it) holding the way to Python only
    home, prefix = Path.home(), Path(sys.base_prefix)
    expected = [prefix.relative_to(home).parts[0]] if prefix.is_relative_to(home) else None
    assert files["grader_home"] == expected


def test_only_its_private_tmp_is_writable_and_it_is_small(seen):
    writes = dict(seen["writes"])
    assert writes.pop("/tmp") == "written"
    assert set(writes.values()) <= {"PermissionError", "OSError", "FileNotFoundError"}, writes
    written, errno = seen["disk"]
    assert errno == 28 and written <= Limits().disk  # ENOSPC at the size of /tmp
    assert seen["writes-after-disk"] == seen["writes"] | {"/tmp": "written"}  # the next exercise has it empty


def test_no_network_beyond_its_own_loopback(seen):
    network = seen["network"]
    assert network["loopback"] == "ConnectionRefusedError" and network["outside"] == "OSError"
    assert network["interfaces"] == ["lo"] and seen["listener"] == "untouched"


def test_processes_threads_and_memory_are_bounded(seen):
    started, error = seen["fork"]
    assert error == "BlockingIOError" and started <= Limits().processes - 2  # the runner and the exercise count too
    started, error = seen["threads"]
    assert error == "can't start new thread" and started <= Limits().processes - 2
    assert seen["memory"] < Limits().memory  # MemoryError before the limit (the process holds torch already)


def test_what_an_exercise_leaves_running_is_gone_before_the_next(seen):
    assert isinstance(seen["leave"], int)
    # the runner's own folder only, beside the way to a Python environment that lives under /tmp (a clone there)
    environment = {Path(p).parts[2] for p in sandbox._environment_paths() if Path(p).parts[1:2] == ("tmp",)}
    assert seen["after"]["running"] == [] and len(set(seen["after"]["files"]) - environment) == 1, seen["after"]


def test_cpu_time_and_output_are_limited():
    spin = "def probe():\n    while True:\n        pass"
    flood = "def probe():\n    while True:\n        print('x' * 10000)"
    found = run_probes({"spin": spin, "flood": flood}, {}, Limits(seconds=20, cpu=2, output=1 << 20))
    assert found["spin"][:2] == ("stopped", "cpu"), found["spin"]
    assert isinstance(found["flood"], wire.Raised) and "File too large" in found["flood"].message
