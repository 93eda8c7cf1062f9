"""Caption data: images grouped with their captions, bad rows counted and skipped, images opened safely.

`load_captions(folder)` reads Flickr8k's Kaggle layout, `Images/` + `captions.txt` (CSV
`image,caption`), which Shapes World also writes (`world.shapes.write_flickr_layout`). The other ways
Flickr8k is handed out (the original release, Karpathy's split file), COCO, and Hugging Face datasets
(a Hub id such as `ariG23498/flickr8k`, a `save_to_disk` folder, parquet files) are read by
`vgpt.scale.sources.load_captions` into the same records.

A folder without a split of its own gets a stable one by a hash of each image name.
"""

from __future__ import annotations

import csv
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from PIL import Image, ImageOps, UnidentifiedImageError

from .config import UserError

KAGGLE_TABLE, KAGGLE_IMAGES = "captions.txt", "Images"


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


@dataclass
class Captions:
    """What a loader found: records grouped by image, the rows it skipped and why."""

    records: list[CaptionRecord]
    skipped: list[str]  # "file:line: problem", one per skipped row
    layout: str  # "kaggle", "original", "karpathy", "coco", or a Hugging Face dataset's table shape
    split_source: str  # where the train / val / test split comes from
    grouped_by: str | None = None  # how captions were grouped by image, where that is not by file name

    def split(self, name: str) -> list[CaptionRecord]:
        return [r for r in self.records if (r.split or split_of_image(r.image_id)) == name]

    def describe(self) -> str:
        """One line for the log: what was found and where its split comes from."""
        grouped = f" (captions grouped by {self.grouped_by})" if self.grouped_by else ""
        return f"{self.layout} layout, {len(self.records)} images{grouped}; split by {self.split_source}"


def inside(folder: Path, name: str) -> Path | None:
    """The file `name` inside `folder`, or None if the name would leave it (`../`, an absolute path)."""
    if not name or Path(name).is_absolute():
        return None
    path = (folder / name).resolve()
    return path if folder.resolve() in path.parents else None


class Rows:
    """Rows in, records out: each row checked, the bad ones noted with file and line."""

    def __init__(self, images: Path | None = None):
        self.images, self.records, self.skipped = images, {}, []

    def add(self, where: str, name: str, caption: str, split: str | None = None) -> None:
        """A row naming an image file in the image folder."""
        name = name.strip()
        path = inside(self.images, name)
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

    def found(self, table: Path, layout: str, split_source: str) -> Captions:
        """The records, or a `DataError` if no row was usable."""
        if not self.records:
            first = f"; first: {self.skipped[0]}" if self.skipped else ""
            raise DataError(f"{table}: no usable rows ({len(self.skipped)} skipped{first})")
        return Captions(list(self.records.values()), self.skipped, layout, split_source)


def read_kaggle_table(table: Path, rows: Rows) -> None:
    """`image,caption` rows of a CSV file with that header."""
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


def load_captions(folder: str | Path) -> Captions:
    """A folder in Flickr8k's Kaggle layout (`Images/` + `captions.txt`), grouped by image."""
    folder = Path(folder)
    table, images = folder / KAGGLE_TABLE, folder / KAGGLE_IMAGES
    if not table.is_file():
        raise DataError(
            f"{folder}: no {KAGGLE_TABLE}; this reader takes Flickr8k's Kaggle layout ({KAGGLE_IMAGES}/ + "
            f"{KAGGLE_TABLE}); vgpt.scale.sources.load_captions (and the command line) reads the other layouts, "
            f"COCO and Hugging Face datasets"
        )
    if not images.is_dir():
        raise DataError(f"{table}: found, but no {KAGGLE_IMAGES}/ folder beside it")
    rows = Rows(images)
    read_kaggle_table(table, rows)
    return rows.found(table, "kaggle", "a hash of each image name (no split lists found)")


def split_of_image(name: str, val: float = 0.1, test: float = 0.1) -> str:
    """train / val / test by a hash of the image name: stable across runs and machines."""
    bucket = zlib.crc32(name.encode()) % 1000 / 1000
    return "val" if bucket < val else ("test" if bucket < val + test else "train")


def open_image(source: str | Path | IO[bytes], name: str | None = None) -> Image.Image:
    """An RGB image, upright (EXIF orientation applied), from a path or an open binary file.

    Transparent images are laid on white. Anything that is not an image, is cut short, or is larger
    than Pillow's decompression-bomb limit is refused with a `DataError` naming the file (`name`, or
    the path) and the problem.
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
