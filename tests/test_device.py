"""Precision by compute capability (vgpt/runtime.py), and CPU threads by the load (vgpt/scale/threads.py)."""

import contextlib
import os

import pytest
import torch

from vgpt import runtime
from vgpt.course import notebook
from vgpt.scale import threads as cpu


@pytest.mark.parametrize(
    ("card", "capability", "dtype"),
    [("T4", (7, 5), torch.float16), ("V100", (7, 0), torch.float16), ("A100", (8, 0), torch.bfloat16),
     ("H100", (9, 0), torch.bfloat16)],
)  # fmt: skip
def test_autocast_dtype_follows_compute_capability(monkeypatch, card, capability, dtype):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    # torch 2.13 counts emulated bf16 and says yes even on a T4: the choice must not rest on it
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    chosen = runtime.autocast_dtype(torch.device("cuda"))
    assert chosen == dtype, card
    assert runtime.grad_scaler(torch.device("cpu"), chosen).is_enabled() == (dtype == torch.float16)


def test_no_autocast_on_cpu_or_mps():
    assert runtime.autocast_dtype(torch.device("cpu")) is None
    assert runtime.autocast_dtype(torch.device("mps")) is None


@pytest.mark.parametrize(
    ("busy", "cores", "most", "threads"),
    [(0.0, 2, 2, 2), (0.1, 2, 2, 2), (0.3, 2, 2, 1), (1.0, 2, 2, 1), (2.0, 2, 2, 1), (5.0, 2, 2, 1),
     (1.0, 8, 8, 7), (0.0, 8, 4, 4), (None, 2, 2, 2)],
)  # fmt: skip
def test_cpu_threads_leave_the_cores_other_processes_use(busy, cores, most, threads):
    assert cpu.cpu_threads(busy, cores, most) == threads


STAT = """cpu  500 0 300 1000 100 0 0 0 0 0
cpu0 200 0 100 600 50 0 0 0 0 0
cpu1 300 0 200 400 50 0 0 0 0 0
intr 12345 0 0
ctxt 999
"""


def test_busy_seconds_count_all_but_idle_and_iowait_on_the_given_cpus():
    hz = os.sysconf("SC_CLK_TCK")
    assert cpu._busy_seconds({0}, STAT) == 300 / hz
    assert cpu._busy_seconds({0, 1}, STAT) == 800 / hz


@pytest.fixture
def threads():
    """torch's thread count, restored after the test."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_a_notebooks_first_cell_sets_threads_from_the_load(threads, monkeypatch, tmp_path):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("VGPT_RUNS", str(tmp_path))
    monkeypatch.setattr(cpu, "DEFAULT_CPU_THREADS", 3)
    monkeypatch.setattr(cpu, "cores", lambda: 3)
    for busy, expected in ((0.0, 3), (1.0, 2), (2.5, 1)):
        monkeypatch.setattr(cpu, "busy_elsewhere", lambda busy=busy: busy)
        notebook.keep_work()
        assert torch.get_num_threads() == expected


def test_busy_elsewhere_measures_a_busy_process_beside(threads):
    """Linux: with a process spinning beside, at least most of one core is busy elsewhere."""
    from vgpt.bench.threads import busy_process

    if cpu.busy_elsewhere() is None:
        pytest.skip("no /proc/stat here")
    with busy_process():
        assert 0.6 <= cpu.busy_elsewhere(0.5) <= cpu.cores() + 0.1


def test_omp_num_threads_is_left_alone(threads, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setattr(cpu, "busy_elsewhere", lambda: 5.0)
    torch.set_num_threads(2)
    assert cpu.use_cpu_threads() == 2


def test_thread_bench_times_each_thread_count_alone_and_beside_a_busy_process(threads):
    from vgpt.bench import threads as bench_threads

    burners = []
    busy = bench_threads.busy_process

    @contextlib.contextmanager
    def watched():
        with busy() as burner:
            burners.append(burner)
            yield burner

    lines = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bench_threads, "busy_process", watched)
        figures = bench_threads.run_thread_bench("tiny", steps=1, rounds=1, captions=4, log=lines.append)
    rows = figures["seconds_per_step"]
    assert len(rows) == len({1, cpu.DEFAULT_CPU_THREADS}) + 1  # 1, the default, vgpt's pick
    assert all(row["alone"] > 0 and row["busy"] > 0 for row in rows.values())
    assert figures["vgpt_threads"]["busy"] <= figures["vgpt_threads"]["alone"]
    assert len(burners) == 1 and burners[0].poll() is not None  # started once, and stopped
    assert any("beside a busy process" in line for line in lines)
