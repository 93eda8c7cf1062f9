"""Caption data sets on disk, grouped by image, with bad rows counted and skipped.

`load_captions(folder)` reads any of the three ways Flickr8k is handed out:

- the Kaggle copy: `Images/` + `captions.txt` (CSV `image,caption`), which
  `shapes.write_flickr_layout` also writes for Shapes World;
- the original release: `Flicker8k_Dataset/` (sic) + `Flickr8k.token.txt`
  (`name.jpg#0<TAB>caption`) and the split lists `Flickr_8k.trainImages.txt`,
  `Flickr_8k.devImages.txt`, `Flickr_8k.testImages.txt`;
- the Karpathy split file `dataset_flickr8k.json` beside an image folder.

COCO in Karpathy's split (`dataset_coco.json` beside `train2014/` and
`val2014/`) has a reader of its own, `coco.py`, which this one hands it to.

The standard split (6000 / 1000 / 1000 images) comes from the split lists or
the Karpathy file, whichever the folder has. A folder with neither gets a
stable split by a hash of the image name, and the loader says so.

Anything else `load_captions` is given (a folder written by `datasets`'
`save_to_disk`, parquet files, a Hugging Face Hub id such as
`ariG23498/flickr8k`) goes to `hf_data.py`, which yields the same records:
their images are read from the dataset's bytes instead of from files.
"""

from __future__ import annotations

import csv
import json
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import UserError


class DataError(UserError):
    """A data set cannot be read; the message names the file and the problem."""


@dataclass
class CaptionRecord:
    image: Path  # the image file; for an image held inside a dataset, its name there (see `opener`)
    captions: list[str] = field(default_factory=list)
    split: str | None = None  # "train" / "val" / "test" from the data set's own split, if it has one
    opener: Callable[[], Image.Image] | None = field(default=None, repr=False, compare=False)  # opens such an image

    @property
    def image_id(self) -> str:
        return self.image.name

    def open(self) -> Image.Image:
        """The image, RGB and upright, from its file or its dataset; a `DataError` if it cannot be read."""
        return open_image(self.image) if self.opener is None else self.opener()


def _inside(folder: Path, name: str) -> Path | None:
    """The file `name` inside `folder`, or None if the name would leave it."""
    if not name or Path(name).is_absolute():
        return None
    path = (folder / name).resolve()
    return path if folder.resolve() in path.parents else None


IMAGE_FOLDERS = ("Images", "Flicker8k_Dataset", "Flickr8k_Dataset")  # Kaggle, original (sic), fixed
KAGGLE_TABLE = "captions.txt"
TOKEN_FILE = "Flickr8k.token.txt"
KARPATHY_FILE = "dataset_flickr8k.json"
SPLIT_LISTS = {
    "train": "Flickr_8k.trainImages.txt",
    "val": "Flickr_8k.devImages.txt",
    "test": "Flickr_8k.testImages.txt",
}


@dataclass
class Captions:
    """What `load_captions` found: records grouped by image, the rows it skipped and why."""

    records: list[CaptionRecord]
    skipped: list[str]  # "file:line: problem", one per skipped row
    layout: str  # "kaggle", "original", "karpathy", or a Hugging Face dataset's table shape
    split_source: str  # where the train / val / test split comes from
    grouped_by: str | None = None  # how captions were grouped by image, where that is not by file name

    def split(self, name: str) -> list[CaptionRecord]:
        return [r for r in self.records if (r.split or split_of_image(r.image_id)) == name]

    def describe(self) -> str:
        """One line for the log: what was found and where its split comes from."""
        grouped = f" (captions grouped by {self.grouped_by})" if self.grouped_by else ""
        return f"{self.layout} layout, {len(self.records)} images{grouped}; split by {self.split_source}"


class _Collector:
    """Rows in, records out: each row checked, the bad ones noted with file and line."""

    def __init__(self, images: Path | None = None):
        self.images, self.records, self.skipped = images, {}, []

    def add(self, where: str, name: str, caption: str, split: str | None = None) -> None:
        """A row naming an image file in the image folder."""
        name = name.strip()
        path = _inside(self.images, name)
        if path is None:
            self.skipped.append(f"{where}: image name {name!r} leaves the image folder")
        elif not " ".join(caption.split()):
            self.skipped.append(f"{where}: empty caption")
        elif not path.is_file():
            self.skipped.append(f"{where}: image {name!r} not found in {self.images}")
        else:
            self.keep(where, name, caption, lambda: CaptionRecord(path, split=split))

    def keep(self, where: str, key: str, caption: str, new_record: Callable[[], CaptionRecord]) -> None:
        """A caption of the image `key`; `new_record` makes its record the first time the key is seen."""
        caption = " ".join(caption.split())
        if not caption:
            self.skipped.append(f"{where}: empty caption")
        elif key in self.records and caption in self.records[key].captions:
            self.skipped.append(f"{where}: duplicate of an earlier caption of {key!r}")
        else:
            if key not in self.records:
                self.records[key] = new_record()
            self.records[key].captions.append(caption)


def _find(folder: Path, name: str) -> Path | None:
    """`name` in the folder or in `Flickr8k_text/` (where the original text archive unpacks)."""
    for place in (folder, folder / "Flickr8k_text"):
        if (place / name).is_file():
            return place / name
    return None


def _image_folder(folder: Path, table: Path) -> Path:
    for name in IMAGE_FOLDERS:
        if (folder / name).is_dir():
            return folder / name
    raise DataError(f"{table}: found, but no image folder beside it (looked for {', '.join(IMAGE_FOLDERS)})")


def _read_kaggle(table: Path, rows: _Collector) -> None:
    with open(table, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header[:2]] != ["image", "caption"]:
            raise DataError(f"{table}: first line must be the header 'image,caption', found {header}")
        for row in reader:
            where = f"{table}:{reader.line_num}"
            if len(row) < 2:
                rows.skipped.append(f"{where}: expected 2 columns (image,caption), found {len(row)}")
            else:
                rows.add(where, row[0], ",".join(row[1:]))


def _read_token_file(table: Path, rows: _Collector) -> None:
    with open(table, encoding="utf-8") as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            name, tab, caption = text.rstrip("\n").partition("\t")
            if not tab or "#" not in name:
                rows.skipped.append(f"{table}:{line}: expected 'image.jpg#n<TAB>caption'")
            else:
                rows.add(f"{table}:{line}", name.rsplit("#", 1)[0], caption)


def _read_karpathy(path: Path, rows: _Collector) -> None:
    try:
        images = json.loads(path.read_text(encoding="utf-8"))["images"]
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path}: not a Karpathy split file (a JSON object with 'images'): {err}") from err
    for i, entry in enumerate(images):
        where = f"{path}: images[{i}]"
        if not isinstance(entry, dict) or "filename" not in entry:
            rows.skipped.append(f"{where}: no 'filename'")
            continue
        split = {"restval": "train"}.get(entry.get("split"), entry.get("split"))
        for sentence in entry.get("sentences", []):
            rows.add(where, entry["filename"], str(sentence.get("raw", "")), split)


def _split_lists(folder: Path) -> dict[str, str] | None:
    """Image name -> split, from the original release's three lists, if all three are here."""
    found = {split: _find(folder, name) for split, name in SPLIT_LISTS.items()}
    if None in found.values():
        return None
    return {
        line.strip(): split
        for split, path in found.items()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    }


def _caption_table(folder: Path) -> tuple[str, Path] | None:
    """The folder's Flickr8k layout and caption file, if it has one."""
    if karpathy := _find(folder, KARPATHY_FILE):
        return "karpathy", karpathy
    if token := _find(folder, TOKEN_FILE):
        return "original", token
    if (folder / KAGGLE_TABLE).is_file():
        return "kaggle", folder / KAGGLE_TABLE
    return None


def load_captions(source: str | Path) -> Captions:
    """A caption data set grouped by image: a folder in any of the three Flickr8k layouts, or a
    Hugging Face dataset (a `save_to_disk` folder, parquet files or a Hub id; see `hf_data.py`)."""
    from . import coco, hf_data  # they build on this module, so they are imported here, not at the top

    folder = Path(source)
    if folder.is_dir() and (folder / coco.COCO_FILE).is_file():
        return coco.load_coco_captions(folder)
    found = _caption_table(folder) if folder.is_dir() else None
    if found is None and hf_data.hf_source_kind(source):
        return hf_data.load_hf_captions(source)
    if not folder.is_dir():
        raise DataError(f"{source}: not a folder, a parquet file or a Hugging Face Hub id (owner/name)")
    if found is None:
        raise DataError(
            f"{folder}: no caption file; expected {KAGGLE_TABLE} (Kaggle layout), {TOKEN_FILE} "
            f"(original release) or {KARPATHY_FILE} (Karpathy split), with an image folder; "
            f"or a Hugging Face dataset (a save_to_disk folder, parquet files)"
        )
    layout, table = found
    rows = _Collector(_image_folder(folder, table))
    {"karpathy": _read_karpathy, "original": _read_token_file, "kaggle": _read_kaggle}[layout](table, rows)
    records = list(rows.records.values())
    if not records:
        raise DataError(
            f"{table}: no usable rows ({len(rows.skipped)} skipped"
            + (f"; first: {rows.skipped[0]})" if rows.skipped else ")")
        )
    source = f"the split field of {table.name}" if layout == "karpathy" else None
    if source is None and (lists := _split_lists(folder)):
        for r in records:
            r.split = lists.get(r.image_id, "unlisted")
        source = "the split lists " + ", ".join(SPLIT_LISTS.values())
    return Captions(records, rows.skipped, layout, source or "a hash of each image name (no split lists found)")


def split_of_image(name: str, val: float = 0.1, test: float = 0.1) -> str:
    """train / val / test by a hash of the image name: stable across runs and machines."""
    bucket = zlib.crc32(name.encode()) % 1000 / 1000
    return "val" if bucket < val else ("test" if bucket < val + test else "train")


def open_image(source: str | Path | IO[bytes], name: str | None = None) -> Image.Image:
    """An RGB image, upright (EXIF orientation applied), from a path or an open binary file.

    Transparent images are laid on white. Anything that is not an image, is cut
    short, or is larger than Pillow's decompression-bomb limit is refused with a
    `DataError` naming the file (`name`, or the path) and the problem.
    """
    label = name or str(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # refuse, do not just warn
            with Image.open(source) as image:
                image = ImageOps.exif_transpose(image)
                if image.mode in ("RGBA", "LA", "P", "PA"):
                    image = image.convert("RGBA")
                    background = Image.new("RGBA", image.size, (255, 255, 255, 255))
                    image = Image.alpha_composite(background, image)
                return image.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise DataError(f"{label}: refused, too many pixels for a safe image ({err})") from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{label}: cannot read as an image ({err.__class__.__name__}: {err})") from err
