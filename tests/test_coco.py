"""COCO in Karpathy's split: a miniature written in the real layout (`dataset_coco.json` beside
`train2014/` and `val2014/`, Shapes World scenes as JPEGs), read, trained on and evaluated."""

import json
import subprocess
import sys

import pytest

from vgpt.data import DataError
from vgpt.scale import coco
from vgpt.scale.runs import evaluate_run
from vgpt.scale.sources import load_captions
from vgpt.world import shapes

# Karpathy's split, shrunk: (split field, folder, number of images)
MINI = (("train", "train2014", 24), ("restval", "val2014", 8), ("val", "val2014", 6), ("test", "val2014", 6))


def _entry(cocoid: int, folder: str, split: str, sentences: list[str]) -> dict:
    filename = f"COCO_{folder}_{cocoid:012d}.jpg"
    return {
        "filepath": folder,
        "filename": filename,
        "split": split,
        "cocoid": cocoid,
        "imgid": cocoid,
        "sentences": [{"raw": s, "tokens": s.lower().rstrip(".").split(), "imgid": cocoid} for s in sentences],
    }


def write_mini_coco(root):
    """44 good images (two captions each, COCO-style: capitalised, full stop), then bad entries."""
    scenes = iter(shapes.generate("train", sum(n for *_, n in MINI), seed=3))
    entries, cocoid = [], 0
    for split, folder, n in MINI:
        (root / folder).mkdir(parents=True, exist_ok=True)
        for _ in range(n):
            cocoid += 1
            scene = next(scenes)
            entry = _entry(cocoid, folder, split, [scene.caption, f"There is {scene.caption}."])
            scene.render(64).save(root / folder / entry["filename"], format="JPEG", quality=95)
            entries.append(entry)
    entries[0]["sentences"].insert(1, {"raw": "   ", "tokens": []})  # an empty caption among good ones
    entries[1]["sentences"].append(dict(entries[1]["sentences"][0]))  # a caption given twice
    (root.parent / "outside.jpg").write_bytes((root / "train2014" / entries[2]["filename"]).read_bytes())
    entries += [
        _entry(900, "val2014", "test", ["a large red circle at the top left"]),  # its image is missing
        {**_entry(901, "val2014", "train", ["escapes"]), "filepath": "..", "filename": "outside.jpg"},
        {**_entry(902, "train2014", "train", ["escapes"]), "filename": "../../outside.jpg"},
        {**_entry(3, "train2014", "holdout", ["an unknown split"])},
        "not an entry",
    ]
    (root / coco.COCO_FILE).write_text(json.dumps({"images": entries, "dataset": "coco"}))
    return root


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return write_mini_coco(tmp_path_factory.mktemp("coco") / "coco")


def test_reads_the_karpathy_split_with_restval_as_train(mini):
    found = load_captions(mini)
    assert found.layout == "coco" and len(found.records) == 44
    assert found.split_source == (
        "Karpathy's split field in dataset_coco.json (24 train, 8 restval, 6 val, 6 test; restval counted as train)"
    )
    assert [len(found.split(s)) for s in ("train", "val", "test")] == [32, 6, 6]
    restval = [r for r in found.split("train") if r.image.parent.name == "val2014"]
    assert len(restval) == 8
    first = found.records[0]
    assert first.image == (mini / "train2014" / "COCO_train2014_000000000001.jpg").resolve()
    assert first.image_id == "COCO_train2014_000000000001.jpg"
    assert len(first.captions) == 2 and first.captions[1].startswith("There is ")
    assert all(len(r.captions) == 2 for r in found.records)  # the empty and the repeated caption left out


def test_bad_entries_are_skipped_once_each_with_file_entry_and_reason(mini):
    skipped = load_captions(mini).skipped
    table = mini / coco.COCO_FILE
    assert skipped == [
        f"{table}: images[0].sentences[1]: empty caption",
        f"{table}: images[1].sentences[2]: duplicate of an earlier caption of "
        "'train2014/COCO_train2014_000000000002.jpg'",
        f"{table}: images[44]: image 'val2014/COCO_val2014_000000000900.jpg' not found in {mini}",
        f"{table}: images[45]: image name '../outside.jpg' leaves the data folder",
        f"{table}: images[46]: image name 'train2014/../../outside.jpg' leaves the data folder",
        f"{table}: images[47]: split 'holdout' is not one of train, restval, val, test",
        f"{table}: images[48]: no 'filename'",
    ]


@pytest.mark.parametrize(
    "content, problem",
    [
        ("{not json", "JSONDecodeError"),
        ('{"annotations": []}', "KeyError: 'images'"),
        ('{"images": {"filename": "x.jpg"}}', "'images' is a dict, not a list"),
    ],
)
def test_a_file_that_is_not_karpathys_is_named(tmp_path, content, problem):
    (tmp_path / coco.COCO_FILE).write_text(content)
    with pytest.raises(DataError, match="not Karpathy's COCO split file") as err:
        load_captions(tmp_path)
    assert str(tmp_path / coco.COCO_FILE) in str(err.value) and problem in str(err.value)


def test_no_usable_image_is_an_error_that_says_why(tmp_path):
    (tmp_path / coco.COCO_FILE).write_text(json.dumps({"images": [_entry(1, "val2014", "test", ["a cat"])]}))
    with pytest.raises(DataError, match=r"no usable images \(1 entries or captions skipped; first: .* not found"):
        load_captions(tmp_path)


def test_published_figures_are_labelled_theirs_beside_ours_x100():
    lines = coco.published_lines({"BLEU-4": 0.1234, "CIDEr-D": 0.5678}, "test")
    assert lines[0] == "x100, as papers print them: BLEU-4 12.34, CIDEr-D 56.78 (this run, test)"
    assert lines[1].startswith("published, NOT this run: ClipCap") and "arXiv 2111.09734" in lines[1]
    assert "  BLEU-4 33.53, CIDEr 113.08  ClipCap, transformer mapper, frozen GPT-2" in lines
    assert "BLEU-4 32.15, CIDEr 108.35  ClipCap, MLP mapper, GPT-2 fine-tuned" in lines[3]
    assert "theirs on test" in coco.published_lines({"BLEU-4": 0.1, "CIDEr-D": 0.2}, "val")[0]


def test_train_and_evaluate_end_to_end(mini, tmp_path):
    """`python -m vgpt train` and `evaluate` on the miniature; only COCO gets the published figures."""
    run, cache = tmp_path / "run", tmp_path / "cache"

    def vgpt(*args):
        return subprocess.run(
            [sys.executable, "-m", "vgpt", *map(str, args)], capture_output=True, text=True, timeout=300
        )

    trained = vgpt(
        "train", "--profile", "tiny", "--data", mini, "--out", run, "--cache", cache, "--epochs", 1, "--batch-size", 8
    )
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "coco layout, 44 images; split by Karpathy's split field" in trained.stdout
    assert "skipped 7 rows; first: " in trained.stdout
    assert "training on 32 images (64 captions), validating on 6; one prefix pass per image" in trained.stdout
    assert "CIDEr-D" in json.loads((run / "metrics.json").read_text())["val"]

    evaluated = vgpt("evaluate", "--run", run, "--data", mini, "--cache", cache)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    out = evaluated.stdout
    assert "6 images of" in out and "(test)" in out and "CIDEr-D" in out
    assert "x100, as papers print them: BLEU-4 " in out and "(this run, test)" in out
    assert "published, NOT this run: ClipCap" in out and "CIDEr 113.08" in out
    print(out)  # the miniature's figures, for whoever runs with -s

    flickr = shapes.write_flickr_layout(shapes.generate("test", 6, seed=5), tmp_path / "shapes8k")
    lines = []
    evaluate_run(run, flickr, cache, log=lines.append)
    assert any(" images of " in line for line in lines) and any("CIDEr-D" in line for line in lines)
    assert not any("ClipCap" in line or "x100" in line for line in lines)
