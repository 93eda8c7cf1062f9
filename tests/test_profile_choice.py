"""The notebooks' compared outputs do not depend on how the profile was chosen.

`load_profile()` prints the profile and why it was picked: "auto: no CUDA GPU here, ..." on this
machine, "asked for 'tiny'" under VGPT_PROFILE=tiny (an option the README offers). nbval compares
that line with the reason taken out (notebooks/nbval_sanitize.cfg), so a learner who set the
variable passes too.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vgpt.loading import resolve_profile

ROOT = Path(__file__).resolve().parents[1]


def test_the_reason_differs_between_auto_and_asked(monkeypatch):
    monkeypatch.setenv("VGPT_PROFILE", "tiny")
    asked = resolve_profile()
    monkeypatch.delenv("VGPT_PROFILE")
    auto = resolve_profile()
    assert asked[0].name == "tiny" and asked[1] == "asked for 'tiny'"
    assert asked[1] != auto[1]  # so a compared cell that printed it would fail one of the two ways


@pytest.mark.slow
def test_notebooks_03_to_05_pass_nbval_under_vgpt_profile_tiny(tmp_path):
    """The three notebooks whose compared cells print the profile line, run as a learner would after
    `export VGPT_PROFILE=tiny` (their stored outputs were made with the automatic choice)."""
    env = {**os.environ, "VGPT_PROFILE": "tiny", "VGPT_RUNS": str(tmp_path / "runs"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    names = ("03_prefix_concatenation", "04_joint_attention_mask", "05_lora_injection")
    sanitize = ["--nbval-sanitize-with", str(ROOT / "notebooks" / "nbval_sanitize.cfg")]
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
               "-o", "addopts=", *sanitize, *(str(ROOT / "notebooks" / f"{n}.ipynb") for n in names)]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT / "notebooks", env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:]
