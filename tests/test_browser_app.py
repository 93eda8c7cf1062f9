"""The Gradio app in a real browser, the way a person uses it (about half a minute).

Runs `.ci/browser_app.py`: `python -m vgpt app --run data/tiny/bridge` on localhost, headless Chromium,
a Shapes World scene uploaded through the page's file dialog, beam search chosen, Caption pressed, the
caption read off the page; then a text file, a PNG cut short and a decompression bomb uploaded, each
refusal read off the page, and two more captions to show the app still serves. Needs Debian's
`chromium` and `chromium-driver`, `pip install -e ".[app]" selenium`. It runs wherever they are and is
skipped, saying which is missing, where they are not; with VGPT_BROWSER_TEST=1 (CI sets it) a missing
one fails the test instead.
"""

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "browser_app.py"
NEEDS = {
    "chromium": Path("/usr/bin/chromium").exists(),
    "chromium-driver": Path("/usr/bin/chromedriver").exists(),
    "gradio": importlib.util.find_spec("gradio") is not None,
    "selenium": importlib.util.find_spec("selenium") is not None,
}
MISSING = [name for name, here in NEEDS.items() if not here]

pytestmark = pytest.mark.skipif(
    bool(MISSING) and os.environ.get("VGPT_BROWSER_TEST") != "1",
    reason=f"the app's browser test needs {', '.join(MISSING)}: apt-get install -y chromium chromium-driver; "
    'pip install -e ".[app]" selenium',
)


def test_a_person_captions_uploads_is_refused_bad_files_and_captions_again(tmp_path):
    shot = tmp_path / "app.png"
    done = subprocess.run([sys.executable, str(SCRIPT), str(shot)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    read = {
        k: ast.literal_eval(v)
        for k, v in re.findall(r"^read in the browser, (.+?): (['\"].*['\"])$", done.stdout, re.M)
    }
    truth = ast.literal_eval(re.search(r"^true caption of my_scene.png: (.*)$", done.stdout, re.M).group(1))
    assert truth == "a small yellow circle at the top right"  # shapes.generate("test", 2, seed=5)[1]
    assert read["upload"] == "uploaded my_scene.png (64 x 64)"
    assert read["caption"] == truth and read["caption again"] == truth  # beam search; the upload is what it captioned
    assert read["refused notes.png"].startswith("notes.png: cannot read as an image (UnidentifiedImageError")
    assert read["refused cut.png"] == (
        "cut.png: cannot read as an image (OSError: image file is truncated). Captioning the example instead."
    )
    assert read["refused bomb.png"].startswith("bomb.png: refused, too many pixels for a safe image")
    assert read["example caption"] == "a small red circle on the right"  # test scene 1, after the refusals
    for picture in (shot, shot.with_name("app-refused.png")):  # the page with its caption and attention maps
        with Image.open(picture) as image:
            assert image.format == "PNG" and image.width >= 1000 and image.height > 800
