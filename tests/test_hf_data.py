"""Hugging Face datasets as caption data: both table shapes, save_to_disk and parquet, bad rows, the Hub
path (through a stand-in for `datasets.load_dataset`: the Hub is not reachable here), and a CLI run."""

import io
import json
import subprocess
import sys

import datasets
import pytest
from datasets import Dataset, DatasetDict, Features, Image, Value
from PIL import Image as PILImage

from vgpt.config import SEED
from vgpt.course import notebook
from vgpt.data import DataError, split_of_image
from vgpt.scale.sources import load_captions
from vgpt.world import shapes

SCENES = shapes.generate("train", 8, seed=3)
LEADS = ("", "look: ")  # two captions per image in the one-caption-per-row tables


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path, monkeypatch):
    """`load_dataset` (parquet) converts into a cache: keep it in the test's folder."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


def png(image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def pil_images(folder, scenes, named):
    """PIL images of the scenes; those at the indices in `named` are opened from files, so they carry a path."""
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for i, scene in enumerate(scenes):
        image = scene.render(64)
        if i in named:
            image.save(folder / f"{i}.png")
            image = PILImage.open(folder / f"{i}.png")
        images.append(image)
    return images


def caption_rows(images, scenes, bad=True) -> Dataset:
    """One caption per row (the seed's ariG23498/flickr8k shape), plus a bad row of each kind."""
    rows = {"image": [], "caption": []}
    for image, scene in zip(images, scenes, strict=True):
        for lead in LEADS:
            rows["image"].append(image)
            rows["caption"].append(lead + scene.caption)
    if bad:
        rows["image"] += [None, images[0], {"bytes": b"not an image", "path": None}, images[1]]
        rows["caption"] += ["an image is missing", "  ", "unreadable bytes", scenes[1].caption]  # last: a duplicate
    return Dataset.from_dict(rows, features=Features({"image": Image(), "caption": Value("string")}))


def grouped(found):
    return {r.image_id: r.captions for r in found.records}


def test_one_caption_per_row_groups_by_file_name_else_by_hash(tmp_path):
    images = pil_images(tmp_path / "files", SCENES, named={0, 2, 4, 6})
    caption_rows(images, SCENES).save_to_disk(tmp_path / "saved")
    found = load_captions(tmp_path / "saved")
    assert found.layout == "Hugging Face (one caption per row)"
    assert found.grouped_by == "file name, or a hash of the image bytes for the 10 rows without one"
    assert found.split_source == "a hash of each image name (it has no splits)"
    assert "9 images (captions grouped by file name, or a hash" in found.describe()
    named = {f"{i}.png": [lead + SCENES[i].caption for lead in LEADS] for i in (0, 2, 4, 6)}
    assert {k: v for k, v in grouped(found).items() if k.endswith(".png")} == named
    hashed = [r for r in found.records if r.image_id.startswith("image-")]
    assert len(hashed) == 5 and [r.captions for r in hashed[:4]] == [
        [lead + SCENES[i].caption for lead in LEADS] for i in (1, 3, 5, 7)
    ]
    saved = tmp_path / "saved"
    assert found.skipped == [
        f"{saved} row 16: no image",
        f"{saved} row 17: empty caption",
        f"{saved} row 19: duplicate of an earlier caption of {hashed[0].image_id!r}",
    ]
    for record in found.records[:-1]:  # each opens from the dataset's bytes, pixel for pixel the scene
        scene = (
            SCENES[int(record.image_id[0])]
            if record.image_id.endswith(".png")
            else SCENES[[1, 3, 5, 7][hashed.index(record)]]
        )
        assert record.open().tobytes() == scene.render(64).tobytes()
    with pytest.raises(DataError, match=rf"{saved} row 18: cannot read as an image"):
        found.records[-1].open()
    for split in ("train", "val", "test"):
        assert found.split(split) == [r for r in found.records if split_of_image(r.image_id) == split]


def test_parquet_file_and_folder_load_like_save_to_disk(tmp_path):
    images = pil_images(tmp_path / "files", SCENES, named={0, 2, 4, 6})
    table = caption_rows(images, SCENES)
    table.save_to_disk(tmp_path / "saved")
    (tmp_path / "pq").mkdir()
    table.to_parquet(tmp_path / "pq" / "flickr.parquet")
    expected = grouped(load_captions(tmp_path / "saved"))
    for source in (tmp_path / "pq" / "flickr.parquet", tmp_path / "pq"):
        found = load_captions(source)
        assert grouped(found) == expected and len(found.skipped) == 3
        assert found.split_source == "a hash of each image name (the dataset has one split, 'train')"
    # parquet keeps the path of an image read from a file, not its bytes: gone file, skipped row
    (tmp_path / "files" / "6.png").unlink()
    found = load_captions(tmp_path / "pq" / "flickr.parquet")
    assert "6.png" not in grouped(found)
    assert found.skipped[:2] == [
        f"{tmp_path / 'pq' / 'flickr.parquet'} [train] row {r}: no image (no file at {tmp_path / 'files' / '6.png'})"
        for r in (12, 13)
    ]


def image_table(scenes, first: int, images=None) -> Dataset:
    """One image per row: image, file_name, caption_0 ... caption_4."""
    images = images or [s.render(64) for s in scenes]
    rows = {"image": images, "file_name": [f"img_{first + i}.jpg" for i in range(len(scenes))]}
    for k, lead in enumerate(("", "a picture: ", "we see ", "there is ", "it shows ")):
        rows[f"caption_{k}"] = [lead + s.caption for s in scenes]
    features = Features(
        {"image": Image(), "file_name": Value("string"), **{f"caption_{k}": Value("string") for k in range(5)}}
    )
    return Dataset.from_dict(rows, features=features)


def split_dict(val_name="validation") -> DatasetDict:
    train = image_table(SCENES[:4], 0).to_dict()
    train["image"][1], train["caption_3"][2] = None, ""  # a row without an image, an empty caption
    return DatasetDict(
        {
            "train": Dataset.from_dict(train, features=image_table(SCENES[:1], 0).features),
            val_name: image_table(SCENES[4:6], 4),
            "test": image_table(SCENES[6:], 6),
        }
    )


@pytest.mark.parametrize("val_name", ["validation", "dev"])
def test_one_image_per_row_with_splits(tmp_path, val_name):
    split_dict(val_name).save_to_disk(tmp_path / "saved")
    data = tmp_path / "parquet" / "data"
    data.mkdir(parents=True)
    for name, table in split_dict(val_name).items():  # the Hub's parquet layout: splits named by the files
        table.to_parquet(data / f"{name}-00000-of-00001.parquet")
    for source in (tmp_path / "saved", tmp_path / "parquet"):
        found = load_captions(source)
        assert found.layout == "Hugging Face (one image per row)" and found.grouped_by == "file name"
        assert found.split_source.startswith("the dataset's splits (") and val_name in found.split_source
        assert {r.image_id: r.split for r in found.records} == {
            "img_0.jpg": "train",
            "img_2.jpg": "train",
            "img_3.jpg": "train",
            "img_4.jpg": "val",
            "img_5.jpg": "val",
            "img_6.jpg": "test",
            "img_7.jpg": "test",
        }
        assert [len(r.captions) for r in found.records] == [5, 4, 5, 5, 5, 5, 5]
        assert found.records[1].captions == [
            lead + SCENES[2].caption for lead in ("", "a picture: ", "we see ", "it shows ")
        ]
        label = f"{source} [train]"
        assert found.skipped == [f"{label} row 1: no image", f"{label} row 2 caption_3: empty caption"]
        assert [r.image_id for r in found.split("val")] == ["img_4.jpg", "img_5.jpg"]
        last = next(r for r in found.records if r.image_id == "img_7.jpg")
        assert last.open().tobytes() == SCENES[7].render(64).tobytes()


def test_names_that_do_not_identify_images_fall_back_to_hashes(tmp_path):
    same_name = [{"bytes": png(s.render(64)), "path": "image.jpg"} for s in SCENES[:3]]
    rows = Dataset.from_dict(
        {"image": same_name + same_name[:1], "caption": ["a", "b", "c", "d"]},
        features=Features({"image": Image(), "caption": Value("string")}),
    )
    rows.save_to_disk(tmp_path / "rows")
    found = load_captions(tmp_path / "rows")
    assert found.grouped_by == "a hash of the image bytes, as rows named 'image.jpg' hold different images"
    assert [r.captions for r in found.records] == [["a", "d"], ["b"], ["c"]]
    table = image_table(SCENES[:3], 0, images=[s.render(64) for s in SCENES[:3]]).to_dict()
    table["file_name"] = ["x.jpg", "x.jpg", "y.jpg"]
    Dataset.from_dict(table, features=image_table(SCENES[:1], 0).features).save_to_disk(tmp_path / "images")
    found = load_captions(tmp_path / "images")
    assert found.grouped_by == "a hash of the image bytes, as file names repeat across rows"
    assert len(found.records) == 3 and all(r.image_id.startswith("image-") for r in found.records)


def test_a_split_column_gives_the_split(tmp_path):
    table = image_table(SCENES[:3], 0).add_column("split", ["train", "restval", "dev"])
    table.save_to_disk(tmp_path / "saved")
    found = load_captions(tmp_path / "saved")
    assert found.split_source == "its 'split' column"
    assert [r.split for r in found.records] == ["train", "train", "val"]


def test_a_hub_id_loads_through_datasets_load_dataset(tmp_path, monkeypatch):
    """The Hub is not reachable here: `datasets.load_dataset` is replaced by a local stand-in."""
    asked = []

    def stand_in(path, *args, **kwargs):
        asked.append(path)
        return DatasetDict({"train": caption_rows([s.render(64) for s in SCENES[:3]], SCENES[:3], bad=False)})

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datasets, "load_dataset", stand_in)
    found = load_captions("ariG23498/flickr8k")
    assert asked == ["ariG23498/flickr8k"] and len(found.records) == 3
    assert found.grouped_by == "a hash of the image bytes, as the rows have no file names"
    assert found.split_source == "a hash of each image name (the dataset has one split, 'train')"

    def offline(path, *args, **kwargs):
        raise ConnectionError("Couldn't reach 'someone/nothing' on the Hub (LocalEntryNotFoundError)\nmore")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError) as err:
        load_captions("someone/nothing")
    assert str(err.value) == (
        "someone/nothing: no such folder here, and the Hugging Face Hub cannot give it "
        "(ConnectionError: Couldn't reach 'someone/nothing' on the Hub "
        "(LocalEntryNotFoundError))"
    )


def test_sources_that_are_not_caption_data_say_why(tmp_path):
    with pytest.raises(DataError, match="not a folder, a parquet file or a Hugging Face Hub id"):
        load_captions(tmp_path / "nowhere")
    with pytest.raises(DataError, match="or a Hugging Face dataset"):
        load_captions(tmp_path)
    Dataset.from_dict({"picture": [1], "caption": ["x"]}).save_to_disk(tmp_path / "no-image")
    with pytest.raises(DataError, match=r"no-image: no 'image' column \(columns: picture, caption\)"):
        load_captions(tmp_path / "no-image")
    Dataset.from_dict({"image": [b"x"], "text": ["x"]}).save_to_disk(tmp_path / "no-caption")
    with pytest.raises(DataError, match="no captions: expected a 'caption' column"):
        load_captions(tmp_path / "no-caption")
    Dataset.from_dict(
        {"image": [None], "caption": ["x"]}, features=Features({"image": Image(), "caption": Value("string")})
    ).save_to_disk(tmp_path / "empty")
    with pytest.raises(DataError, match=r"empty: no usable rows \(1 skipped; first: .* row 0: no image\)"):
        load_captions(tmp_path / "empty")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "state.json").write_text("{")
    with pytest.raises(DataError, match="broken: cannot load"):
        load_captions(tmp_path / "broken")


def test_without_datasets_vgpt_imports_and_says_how_to_install(tmp_path, monkeypatch):
    caption_rows([s.render(64) for s in SCENES[:2]], SCENES[:2], bad=False).save_to_disk(tmp_path / "saved")
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets now raises ImportError
    with pytest.raises(
        DataError,
        match=r"^reading a Hugging Face dataset needs the `datasets` library: "
        r'pip install "vgpt\[hf\]"$',
    ):
        load_captions(tmp_path / "saved")
    code = (
        "import sys; sys.modules['datasets'] = None\n"
        "import vgpt, vgpt.data, vgpt.scale.hf_data, vgpt.scale.runs, vgpt.course.notebook\n"
        "from vgpt.__main__ import main\n"
        f"sys.exit(main(['extract', '--profile', 'tiny', '--data', {str(tmp_path / 'saved')!r}]))"
    )
    run = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip().endswith('needs the `datasets` library: pip install "vgpt[hf]"')


def test_notebooks_read_a_dataset_through_eval_set(tmp_path, monkeypatch, capsys):
    image_table(SCENES, 0).save_to_disk(tmp_path / "saved")
    monkeypatch.setattr(notebook, "DATA", str(tmp_path / "saved"))
    images, references, scenes = notebook.eval_set(SEED, "train", n=2)
    train = [r for r in load_captions(tmp_path / "saved").records if split_of_image(r.image_id) == "train"][:2]
    assert scenes is None and references == [r.captions for r in train]
    assert [i.size for i in images] == [(64, 64)] * 2
    assert (
        "Hugging Face (one image per row) layout, 8 images (captions grouped by file name)" in capsys.readouterr().out
    )


def vgpt(*args):
    return subprocess.run(
        [sys.executable, "-m", "vgpt", *map(str, args)], check=False, capture_output=True, text=True, timeout=600
    )


def test_cli_trains_and_evaluates_on_a_saved_dataset(tmp_path):
    scenes = shapes.generate("train", 48, seed=5)
    images = pil_images(tmp_path / "files", scenes, named=set(range(0, 48, 2)))
    splits = {"train": (0, 36), "validation": (36, 42), "test": (42, 48)}
    tables = {name: caption_rows(images[a:b], scenes[a:b], bad=False) for name, (a, b) in splits.items()}
    tables["train"] = caption_rows(images[:36], scenes[:36])  # with the bad rows
    DatasetDict(tables).save_to_disk(tmp_path / "saved")
    run, cache = tmp_path / "run", tmp_path / "cache"
    common = ["--data", tmp_path / "saved", "--cache", cache]
    trained = vgpt("train", "--profile", "tiny", "--out", run, *common, "--epochs", 1, "--batch-size", 16)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert (
        "Hugging Face (one caption per row) layout, 49 images (captions grouped by file name, or a hash of "
        "the image bytes for the 50 rows without one); split by the dataset's splits (train, validation, "
        "test)"
    ) in trained.stdout
    assert "skipped 3 rows; first: " in trained.stdout and "row 72: no image" in trained.stdout
    assert "left out 1 images that cannot be read; first: " in trained.stdout
    assert "training on 36 images (72 captions), validating on 6; one prefix pass per image" in trained.stdout
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["data"] == str(tmp_path / "saved") and "CIDEr-D" in summary["val"]
    evaluated = vgpt("evaluate", "--run", run, *common)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert "6 images of" in evaluated.stdout and "(test)" in evaluated.stdout
