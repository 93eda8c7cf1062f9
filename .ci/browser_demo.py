#!/usr/bin/env python
"""Notebook 08's demo widget driven the way a person drives it, in a real browser.

JupyterLab is served on a free localhost port from a temporary folder holding a copy of
notebooks/08_evaluation_and_demo.ipynb; headless Chromium (Debian's, with its chromedriver:
nothing is downloaded at run time) opens the notebook, runs all cells from the Run menu, finds the
demo widget by its CSS classes, clicks its upload button, chooses a Shapes World scene PNG in the
file dialog, presses Caption and reads the caption the widget shows. It prints the caption, the
scene's true caption and the time of each step, saves a PNG of the widget to the path given, and
exits non-zero, naming the step, if any step fails (the screenshot then shows where it stopped).

    apt-get install -y chromium chromium-driver      # /usr/bin/chromium, /usr/bin/chromedriver
    pip install selenium jupyterlab                  # into the venv that has vgpt's dependencies
    python .ci/browser_demo.py /tmp/demo.png

The kernel runs this interpreter (the venv it belongs to) with the repository first on PYTHONPATH
and the Hub offline, so the notebook runs on the tiny profile: about a minute and a half on two
CPU cores (longer when they are busy), most of it the notebook's evaluation cells. Everything it
writes goes to a temporary folder, removed at the end; the server, its kernel and the browser
are stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "08_evaluation_and_demo.ipynb"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# what Chromium needs to run headless as root in a container, and to stay off the network
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1600",
]


class StepFailed(Exception):
    """A step of the walk-through did not happen; the message names the step and what was seen."""


class Steps:
    """Times each step and names the one that fails."""

    def __init__(self):
        self.start = time.monotonic()

    @contextmanager
    def step(self, name: str):
        began = time.monotonic()
        try:
            yield
        except StepFailed:
            raise
        except Exception as err:  # a Selenium timeout or a server that did not start: say which step it was
            raise StepFailed(f"{name}: {type(err).__name__}: {str(err).strip() or 'no detail'}") from err
        print(f"  {time.monotonic() - began:6.1f} s  {name}", flush=True)

    def total(self) -> float:
        return time.monotonic() - self.start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# JupyterLab settings for an unattended run: start the notebook's kernel without asking, no news prompt
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"autoStartDefaultKernel": True},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false"},
}


def lab_settings(folder: Path) -> None:
    for plugin, values in LAB_SETTINGS.items():
        path = folder / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def kernel_spec(folder: Path) -> None:
    """A `python3` kernel that is this interpreter, found first on JUPYTER_PATH whatever else is installed."""
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"}))


@contextmanager
def jupyter_lab(root: Path, home: Path, log: Path):
    """Serve `root` with JupyterLab on 127.0.0.1; yields (base url, token). Stops the server and its kernels after."""
    port, token = free_port(), secrets.token_hex(16)
    kernel_spec(home / "share")
    lab_settings(home / "settings")
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env = {
        **os.environ,
        "PYTHONPATH": path,
        "HF_HUB_OFFLINE": "1",
        "JUPYTER_PATH": str(home / "share"),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "IPYTHONDIR": str(home / "ipython"),
    }
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.allow_root=True",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
        f"--LabServerApp.workspaces_dir={home / 'workspaces'}",
        f"--LabServerApp.user_settings_dir={home / 'settings'}",
    ]
    with open(log, "w") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise StepFailed(f"JupyterLab exited with code {server.returncode}; its log:\n{tail(log)}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            except OSError as err:
                if time.monotonic() > deadline:
                    raise StepFailed(f"JupyterLab did not answer on {url} within 120 s; its log:\n{tail(log)}") from err
                time.sleep(0.5)
        yield url, token
    finally:
        stop(server)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's own process group (it shuts its kernels down), SIGKILL if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    try:
        os.killpg(process.pid, signal.SIGKILL)  # a kernel left behind in the group
    except ProcessLookupError:
        pass


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"


@contextmanager
def chromium(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for program in (CHROMIUM, CHROMEDRIVER):
        if not program.exists():
            raise StepFailed(f"{program} is missing: apt-get install -y chromium chromium-driver")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager, should anything reach it, downloads nothing
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.enable_bidi = True  # the file dialog arrives as a WebDriver BiDi event
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def scene_image(folder: Path) -> tuple[Path, str]:
    """A Shapes World test scene as a PNG file, and its true caption."""
    sys.path.insert(0, str(REPO))  # this checkout's vgpt, the one the kernel gets
    from vgpt.world import shapes

    scene = shapes.generate("test", 2, seed=5)[1]
    path = folder / "my_scene.png"
    scene.render(64).save(path)
    return path, scene.caption


def run_menu(driver, timeout: float, menu: str, item: str) -> None:
    """Click a menu of JupyterLab's menu bar, then one of its items, by their visible labels."""
    from selenium.webdriver.common.by import By

    def labelled(css: str, text: str):
        return lambda d: [e for e in d.find_elements(By.CSS_SELECTOR, css) if e.text == text]

    until(driver, timeout, labelled(".lm-MenuBar-itemLabel", menu), f"the menu {menu!r}")[0].click()
    until(driver, timeout, labelled(".lm-Menu-itemLabel", item), f"the menu item {item!r}")[0].click()


def choose_file(driver, button, path: Path, timeout: float = 30) -> None:
    """Click an upload button and pick `path` in the file dialog that opens (a WebDriver BiDi event)."""
    opened, seen = threading.Event(), {}

    def on_dialog(info):
        seen["info"] = info
        opened.set()

    handler = driver.input.add_file_dialog_handler(on_dialog)
    try:
        button.click()
        if not opened.wait(timeout):
            raise StepFailed(f"no file dialog opened within {timeout:.0f} s of clicking the upload button")
        info = seen["info"]
        driver.input.set_files(context=info.context, element=info.element, files=[str(path)])
    finally:
        driver.input.remove_file_dialog_handler(handler)


def until(driver, timeout: float, condition, what: str, explain=None):
    """Wait for `condition(driver)` to be truthy and return it; a JupyterLab dialog on the way fails at once
    with its text. `explain(driver)`, when given, adds what the page shows to a timeout's message."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def check(driver):
        dialogs = driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog")
        if dialogs:
            raise StepFailed(f"a dialog came up while waiting for {what}: {dialogs[0].text!r}")
        return condition(driver)

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.25).until(check)
    except TimeoutException as err:
        seen = f"\n{explain(driver)}" if explain else ""
        raise StepFailed(f"waited {timeout:.0f} s for {what}{seen}") from err


def cell_errors(driver) -> str:
    """The text of any error output in the notebook, to say why the demo never appeared."""
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, '[data-mime-type="application/vnd.jupyter.stderr"]')
    return "error output in the notebook:\n" + "\n".join(e.text for e in found)[-3000:] if found else "no error output"


def walk_through(driver, url: str, token: str, image: Path, steps: Steps, timeout: float) -> str:
    """The person's path through notebook 08's demo; returns the caption the widget shows."""
    from selenium.webdriver.common.by import By

    css = By.CSS_SELECTOR
    with steps.step("open the notebook in JupyterLab, until its kernel is idle"):
        driver.get(f"{url}/lab/tree/{NOTEBOOK.name}?token={token}")
        until(driver, timeout, lambda d: d.find_elements(css, ".jp-Notebook .jp-Cell"), "the notebook's cells")
        status = driver.find_element(css, "#jp-main-statusbar")  # its kernel item reads "Python 3 | Idle"
        until(
            driver,
            timeout,
            lambda d: "Python 3 | Idle" in status.get_attribute("textContent"),
            "the kernel to be idle",
            explain=lambda d: f"the status bar reads {status.get_attribute('textContent')!r}",
        )
    with steps.step("Run > Run All Cells, until the demo widget shows"):
        run_menu(driver, timeout, "Run", "Run All Cells")
        upload = until(
            driver,
            timeout,
            lambda d: d.find_elements(css, ".vgpt-demo .vgpt-upload"),
            "the demo widget",
            explain=cell_errors,
        )
        widget = driver.find_element(css, ".vgpt-demo")
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", widget)
    with steps.step(f"upload {image.name} with the widget's upload button"):
        choose_file(driver, upload[0], image)
        message = widget.find_element(css, ".vgpt-message")
        until(
            driver,
            timeout,
            lambda d: f"uploaded {image.name}" in message.text,
            f"the message 'uploaded {image.name}'",
            explain=lambda d: f"the widget says {message.text!r}",
        )
    with steps.step("press Caption, until the caption and its attention maps show"):
        widget.find_element(css, ".vgpt-caption-button").click()
        caption = widget.find_element(css, ".vgpt-caption")
        until(driver, timeout, lambda d: caption.text.startswith("caption:"), "the caption")
        until(
            driver,
            timeout,
            lambda d: widget.find_elements(css, ".jp-OutputArea-output img"),
            "the attention maps' picture in the widget's output",
        )
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", widget)
    return caption.text.removeprefix("caption:").strip()


def screenshot(driver, path: Path) -> None:
    """The demo widget alone when it is on the page, else the whole window (a failure shows where it stopped)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        found = driver.find_elements(By.CSS_SELECTOR, ".vgpt-demo")
        found[0].screenshot(str(path)) if found else driver.save_screenshot(str(path))
    except (WebDriverException, OSError) as err:  # the browser has gone: say so, and let the step's error speak
        print(f"no screenshot: {type(err).__name__}: {err}", file=sys.stderr)
    else:
        print(f"screenshot: {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("screenshot", type=Path, help="where to save the PNG of the widget")
    parser.add_argument(
        "--timeout",
        type=float,
        default=300,
        help="seconds each browser step may take (running the notebook is the long one)",
    )
    args = parser.parse_args(argv)
    steps = Steps()
    try:
        with tempfile.TemporaryDirectory(prefix="vgpt-browser-") as tmp, ExitStack() as stack:
            tmp = Path(tmp)
            (tmp / "root").mkdir()
            shutil.copy(NOTEBOOK, tmp / "root" / NOTEBOOK.name)
            image, truth = scene_image(tmp)
            with steps.step("start JupyterLab"):
                url, token = stack.enter_context(jupyter_lab(tmp / "root", tmp / "jupyter", tmp / "lab.log"))
            with steps.step("start Chromium"):
                driver = stack.enter_context(chromium(tmp / "profile"))
            try:
                caption = walk_through(driver, url, token, image, steps, args.timeout)
            except StepFailed:
                print(f"JupyterLab's log, last lines:\n{tail(tmp / 'lab.log')}", file=sys.stderr)
                raise
            finally:
                screenshot(driver, args.screenshot)
    except StepFailed as err:
        print(f"FAILED after {steps.total():.1f} s: {err}", file=sys.stderr)
        return 1
    print(f"caption read in the browser: {caption!r}")
    print(f"true caption of {image.name}:    {truth!r}")
    print(f"total: {steps.total():.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
