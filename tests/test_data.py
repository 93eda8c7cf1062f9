"""Caption data sets: the three Flickr8k layouts load to the same records; bad rows are reported and skipped."""

import csv
import json

import pytest
from PIL import Image

from vgpt import data
from vgpt.data import DataError, open_image, split_of_image
from vgpt.scale.sources import load_captions

# Four images, five captions each, with commas, quotes and non-ASCII; a standard split of 2 / 1 / 1.
CAPTIONS = {
    f"{1000 + i}_ab12cd.jpg": [
        f"A dog, number {i}, runs through the grass .",
        f'A child says "hello" to dog {i} .',
        f"Ein Hund im Schnee , café n°{i} .",
        f"Two people 'wave' at dog {i} 🐕 .",
        f"a dog {i}",
    ]
    for i in range(4)
}
SPLITS = dict(zip(CAPTIONS, ["train", "train", "val", "test"]))
LISTS = {"train": "Flickr_8k.trainImages.txt", "val": "Flickr_8k.devImages.txt", "test": "Flickr_8k.testImages.txt"}


def _images(folder):
    folder.mkdir(parents=True)
    for i, name in enumerate(CAPTIONS):
        Image.new("RGB", (8 + i, 6), (40 * i, 0, 0)).save(folder / name, format="JPEG")
    return folder


def _split_lists(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for split, file in LISTS.items():
        (folder / file).write_text("".join(f"{n}\n" for n, s in SPLITS.items() if s == split))


def write_kaggle(root, extra_rows=(), lists=True):
    _images(root / "Images")
    with open(root / "captions.txt", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "caption"])
        writer.writerows([name, c] for name, caps in CAPTIONS.items() for c in caps)
        writer.writerows(extra_rows)
    if lists:
        _split_lists(root)
    return root


def write_original(root, extra_lines=()):
    _images(root / "Flicker8k_Dataset")
    text = root / "Flickr8k_text"
    text.mkdir()
    lines = [f"{name}#{k}\t{c}" for name, caps in CAPTIONS.items() for k, c in enumerate(caps)]
    (text / "Flickr8k.token.txt").write_text("\n".join([*lines, *extra_lines]) + "\n", encoding="utf-8")
    _split_lists(text)
    return root


def write_karpathy(root, extra_images=()):
    _images(root / "Images")
    images = [
        {"filename": name, "split": SPLITS[name], "sentences": [{"raw": c, "tokens": c.split()} for c in caps]}
        for name, caps in CAPTIONS.items()
    ]
    data = {"dataset": "flickr8k", "images": [*images, *extra_images]}
    (root / "dataset_flickr8k.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return root


def grouped(found):
    return {r.image_id: (r.captions, r.split) for r in found.records}


def test_three_layouts_load_to_the_same_grouped_records(tmp_path):
    expected = {name: (caps, SPLITS[name]) for name, caps in CAPTIONS.items()}
    for layout, write in (("kaggle", write_kaggle), ("original", write_original), ("karpathy", write_karpathy)):
        found = load_captions(write(tmp_path / layout))
        assert found.layout == layout
        assert grouped(found) == expected, layout
        assert found.skipped == []
        assert [r.image_id for r in found.split("train")] == list(CAPTIONS)[:2]
        assert all(r.image.is_file() for r in found.records)


def test_without_split_lists_the_split_is_a_stable_hash_and_says_so(tmp_path):
    found = load_captions(write_kaggle(tmp_path / "k", lists=False))
    assert "hash" in found.split_source
    assert all(r.split is None for r in found.records)
    for name in ("train", "val", "test"):
        assert [r.image_id for r in found.split(name)] == [n for n in CAPTIONS if split_of_image(n) == name]


def test_original_release_lists_leave_unlisted_images_out(tmp_path):
    root = write_original(tmp_path / "o")
    (root / "Flickr8k_text" / "Flickr_8k.testImages.txt").write_text("")
    found = load_captions(root)
    assert [r.split for r in found.records] == ["train", "train", "val", "unlisted"]
    assert found.split("test") == []


BAD = ["missing.jpg", "../escape.jpg", "/etc/passwd"]


def test_kaggle_bad_rows_are_reported_with_file_and_line(tmp_path):
    root = write_kaggle(
        tmp_path / "k",
        [[BAD[0], "a caption"], [BAD[1], "x"], [BAD[2], "x"], [list(CAPTIONS)[0], "   "], ["only-one-column"]],
    )
    found = load_captions(root)
    assert grouped(found) == {n: (c, SPLITS[n]) for n, c in CAPTIONS.items()}
    table = root / "captions.txt"
    assert found.skipped == [
        f"{table}:22: image 'missing.jpg' not found in {root / 'Images'}",
        f"{table}:23: image name '../escape.jpg' leaves the image folder",
        f"{table}:24: image name '/etc/passwd' leaves the image folder",
        f"{table}:25: empty caption",
        f"{table}:26: expected 2 columns (image,caption), found 1",
    ]


def test_original_bad_lines_are_reported_with_file_and_line(tmp_path):
    first = list(CAPTIONS)[0]
    root = write_original(tmp_path / "o", [f"{BAD[0]}#0\tx", f"{BAD[1]}#0\tx", f"{first}#5\t", "no tab here"])
    found = load_captions(root)
    table = root / "Flickr8k_text" / "Flickr8k.token.txt"
    assert [s.split(": ", 1)[0] for s in found.skipped] == [f"{table}:{n}" for n in (21, 22, 23, 24)]
    assert [s.split(": ", 1)[1].split(" ")[0] for s in found.skipped] == ["image", "image", "empty", "expected"]
    assert len(found.records) == 4


def test_karpathy_bad_entries_are_reported(tmp_path):
    root = write_karpathy(
        tmp_path / "j", [{"filename": BAD[1], "split": "train", "sentences": [{"raw": "x"}]}, {"split": "train"}]
    )
    found = load_captions(root)
    assert found.skipped == [
        f"{root / 'dataset_flickr8k.json'}: images[4]: image name '../escape.jpg' leaves the image folder",
        f"{root / 'dataset_flickr8k.json'}: images[5]: no 'filename'",
    ]


def test_folders_that_cannot_be_read_say_why(tmp_path):
    with pytest.raises(DataError, match="no caption file; expected captions.txt"):
        load_captions(tmp_path)
    with pytest.raises(DataError, match="not a folder"):
        load_captions(tmp_path / "nowhere")
    (tmp_path / "captions.txt").write_text("image,caption\nx.jpg,a\n")
    with pytest.raises(DataError, match="no image folder beside it"):
        load_captions(tmp_path)
    (tmp_path / "Images").mkdir()
    with pytest.raises(DataError, match=r"captions.txt: no usable rows \(1 skipped; first: .*x.jpg"):
        load_captions(tmp_path)
    (tmp_path / "captions.txt").write_text("file,text\n")
    with pytest.raises(DataError, match="first line must be the header 'image,caption'"):
        load_captions(tmp_path)


def test_open_image_modes_and_bad_files(tmp_path):
    for mode in ("L", "LA", "P", "RGBA", "CMYK", "I;16"):
        suffix = "tif" if mode in ("CMYK", "I;16") else "png"
        Image.new(mode, (5, 3)).save(tmp_path / f"x_{mode.replace(';', '')}.{suffix}")
    for path in tmp_path.iterdir():
        image = open_image(path)
        assert image.mode == "RGB" and image.size == (5, 3)
    (tmp_path / "fake.png").write_text("not an image")
    with pytest.raises(DataError, match="fake.png: cannot read as an image"):
        open_image(tmp_path / "fake.png")


def test_the_core_reader_takes_the_kaggle_layout_and_points_elsewhere_for_the_rest(tmp_path):
    """`data.load_captions` reads the layout Shapes World writes; another layout gets a message that
    names the reader that takes it (the command line's, `scale.sources.load_captions`)."""
    folder = tmp_path / "kaggle"
    (folder / "Images").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(folder / "Images" / "a.png")
    (folder / "captions.txt").write_text("image,caption\na.png,a red square\na.png,a square in red\n")
    found = data.load_captions(folder)
    assert found.layout == "kaggle" and [r.captions for r in found.records] == [["a red square", "a square in red"]]
    original = tmp_path / "original"
    (original / "Flicker8k_Dataset").mkdir(parents=True)
    (original / "Flickr8k.token.txt").write_text("a.jpg#0\ta dog\n")
    with pytest.raises(DataError, match="no captions.txt.*vgpt.scale.sources.load_captions"):
        data.load_captions(original)
