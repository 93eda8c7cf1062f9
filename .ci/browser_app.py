#!/usr/bin/env python
"""The Gradio app of `python -m vgpt app` driven the way a person drives it, in a real browser.

The app is served on a free localhost port on a run folder (default: the shipped tiny bridge);
headless Chromium (Debian's, with its chromedriver: nothing is downloaded at run time) opens the page,
uploads a Shapes World test scene with the upload area's file dialog, chooses beam search, presses
Caption and reads the caption and the attention maps off the page. Then it uploads three files that
are not images it can take (text named .png, a PNG cut short, a decompression bomb: a 48 kB PNG of
20,000 x 20,000 pixels), reads each message off the page, captions the example to show the app still
serves, and uploads the scene again and captions it. It prints what it read and the time of each
step, saves two screenshots (the refusal of the bomb, and the page at the end), and exits non-zero,
naming the step, if any step fails.

    apt-get install -y chromium chromium-driver      # /usr/bin/chromium, /usr/bin/chromedriver
    pip install -e ".[app]" selenium                 # into the venv that has vgpt's dependencies
    python .ci/browser_app.py /tmp/app.png

About half a minute on two CPU cores; everything it writes goes to a temporary folder, removed at
the end; the server and the browser are stopped. The browser parts are notebook 08's browser test's
(`browser_demo.py` beside this file).
"""

from __future__ import annotations

import argparse
import io
import os
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from contextlib import ExitStack, contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_demo import REPO, StepFailed, Steps, choose_file, chromium, free_port, stop, tail, until  # noqa: E402

SCENE = ("test", 2, 5, 1)  # shapes.generate("test", 2, seed=5)[1]: the shipped bridge captions it right


@contextmanager
def app_server(run: Path, folder: Path, log: Path):
    """`python -m vgpt app --run RUN` on 127.0.0.1, offline; yields its URL. Stops it after."""
    port = free_port()
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env = {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "GRADIO_TEMP_DIR": str(folder / "uploads")}
    command = [sys.executable, "-m", "vgpt", "app", "--run", str(run), "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "w") as out:
        server = subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if server.poll() is not None:
                raise StepFailed(f"the app exited with code {server.returncode}; its log:\n{tail(log)}")
            try:
                with urllib.request.urlopen(f"{url}/config", timeout=2):
                    break
            except OSError as err:
                if time.monotonic() > deadline:
                    raise StepFailed(f"the app did not answer on {url} within 180 s; its log:\n{tail(log)}") from err
                time.sleep(0.5)
        yield url
    finally:
        stop(server)


def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid black-and-white PNG of width x height pixels, zlib-packed to a few tens of kB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row, packer = b"\0" * (1 + (width + 7) // 8), zlib.compressobj(9)
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def test_files(folder: Path) -> tuple[Path, str, dict[str, Path]]:
    """The scene as a PNG and its true caption; and the bad files, by what is wrong with them."""
    sys.path.insert(0, str(REPO))  # this checkout's vgpt, the one the server runs
    from vgpt.world import shapes

    split, n, seed, index = SCENE
    scene = shapes.generate(split, n, seed=seed)[index]
    image = folder / "my_scene.png"
    scene.render(64).save(image)
    buffer = io.BytesIO()
    scene.render(64).save(buffer, format="PNG")
    bad = {"not an image": folder / "notes.png", "cut short": folder / "cut.png", "a bomb": folder / "bomb.png"}
    bad["not an image"].write_text("shopping list: milk, eggs\n")
    bad["cut short"].write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    bad["a bomb"].write_bytes(bomb_png())
    return image, scene.caption, bad


def walk_through(driver, url: str, image: Path, bad: dict[str, Path], steps: Steps, timeout: float, shots: Path):
    """The person's path through the page; returns what it read: captions and messages."""
    from selenium.webdriver.common.by import By

    css, read = By.CSS_SELECTOR, {}
    message = lambda: driver.find_element(css, "#vgpt-message").text.strip()  # noqa: E731
    caption_box = lambda: driver.find_element(css, "#vgpt-caption textarea")  # noqa: E731

    def upload(path: Path, expect: str) -> str:
        clear = driver.find_elements(css, "#vgpt-upload button[aria-label='Clear']")
        if clear:  # a file is there: take it away first, as a person does, and wait for the drop area
            clear[0].click()
        area = until(driver, timeout, lambda d: d.find_elements(css, "#vgpt-upload button.upload-container"),
                     "the upload area")  # fmt: skip
        choose_file(driver, area[0], path)
        return until(driver, timeout, lambda d: expect in message() and message(), f"the message {expect!r}",
                     explain=lambda d: f"the page says {message()!r}")  # fmt: skip

    def press_caption() -> str:  # every image change clears the caption: wait for the new one
        driver.find_element(css, "#vgpt-caption-button").click()
        box = caption_box()
        text = until(driver, timeout, lambda d: box.get_property("value"), "the caption")
        until(driver, timeout, lambda d: d.find_elements(css, "#vgpt-maps img"), "the attention maps' picture")
        return text

    with steps.step("open the page"):
        driver.get(url)
        until(driver, timeout, lambda d: d.find_elements(css, "#vgpt-caption-button"), "the Caption button")
    with steps.step(f"upload {image.name} with the upload area's file dialog"):
        read["upload"] = upload(image, f"uploaded {image.name}")
    with steps.step("choose beam search, until its width slider shows"):
        driver.find_element(css, "#vgpt-mode label[data-testid='beam search-radio-label']").click()
        until(driver, timeout, lambda d: d.find_element(css, "#vgpt-beams").is_displayed(), "the beam width slider")
    with steps.step("press Caption, until the caption and the attention maps show"):
        read["caption"] = press_caption()
    for what, path in bad.items():
        with steps.step(f"upload {path.name} ({what}), until the page says why it is refused"):
            read[f"refused {path.name}"] = upload(path, path.name)
            if caption_box().get_property("value"):
                raise StepFailed(f"the last caption still shows beside the refusal of {path.name}")
    shoot(driver, shots.with_name(shots.stem + "-refused.png"))
    with steps.step("press Caption with the refused file there: the example is captioned"):
        read["example caption"] = press_caption()
    with steps.step(f"upload {image.name} again and caption it"):
        upload(image, f"uploaded {image.name}")
        read["caption again"] = press_caption()
    driver.execute_script("window.scrollTo(0, 0)")
    return read


def shoot(driver, path: Path) -> None:
    """The whole page as tall as it is (the attention maps sit below the fold)."""
    from selenium.common.exceptions import WebDriverException

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1400, max(900, min(int(height) + 40, 3000)))
        driver.save_screenshot(str(path))
    except (WebDriverException, OSError) as err:
        print(f"no screenshot: {type(err).__name__}: {err}", file=sys.stderr)
    else:
        print(f"screenshot: {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("screenshot", type=Path, help="where to save the PNG of the page (and NAME-refused.png)")
    parser.add_argument("--run", type=Path, default=REPO / "data" / "tiny" / "bridge", help="run folder to serve")
    parser.add_argument("--timeout", type=float, default=120, help="seconds each browser step may take")
    args = parser.parse_args(argv)
    steps = Steps()
    try:
        with tempfile.TemporaryDirectory(prefix="vgpt-app-browser-") as tmp, ExitStack() as stack:
            tmp = Path(tmp)
            image, truth, bad = test_files(tmp)
            with steps.step("start the app"):
                url = stack.enter_context(app_server(args.run.resolve(), tmp, tmp / "app.log"))
            with steps.step("start Chromium"):
                driver = stack.enter_context(chromium(tmp / "profile"))
            try:
                read = walk_through(driver, url, image, bad, steps, args.timeout, args.screenshot)
            except StepFailed:
                print(f"the app's log, last lines:\n{tail(tmp / 'app.log')}", file=sys.stderr)
                raise
            finally:
                shoot(driver, args.screenshot)
            if "Traceback" in (tmp / "app.log").read_text():
                raise StepFailed(f"the app's log holds a traceback:\n{tail(tmp / 'app.log')}")
    except StepFailed as err:
        print(f"FAILED after {steps.total():.1f} s: {err}", file=sys.stderr)
        return 1
    for key, text in read.items():
        print(f"read in the browser, {key}: {text!r}")
    print(f"true caption of {image.name}: {truth!r}")
    print(f"total: {steps.total():.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
