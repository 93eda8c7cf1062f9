"""Caption data sets on disk: a folder of images with a `captions.txt` (the Flickr8k Kaggle layout,
which `shapes.write_flickr_layout` also writes), grouped by image, with bad rows counted and skipped.
"""

from __future__ import annotations

import csv
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError


class DataError(ValueError):
    """A data set cannot be read; the message names the file and the problem."""


@dataclass
class CaptionRecord:
    image: Path
    captions: list[str] = field(default_factory=list)

    @property
    def image_id(self) -> str:
        return self.image.name


def _inside(folder: Path, name: str) -> Path | None:
    """The file `name` inside `folder`, or None if the name would leave it."""
    if not name or Path(name).is_absolute():
        return None
    path = (folder / name).resolve()
    return path if folder.resolve() in path.parents else None


def load_caption_folder(folder: str | Path) -> tuple[list[CaptionRecord], list[str]]:
    """`folder/Images/*` + `folder/captions.txt` (CSV: image,caption) -> records and skipped-row notes."""
    folder = Path(folder)
    table = folder / "captions.txt"
    images = folder / "Images"
    if not table.is_file():
        raise DataError(f"{table}: missing; expected a folder with Images/ and captions.txt (image,caption rows)")
    records: dict[str, CaptionRecord] = {}
    skipped: list[str] = []
    with open(table, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header[:2]] != ["image", "caption"]:
            raise DataError(f"{table}: first line must be the header 'image,caption', found {header}")
        for line, row in enumerate(reader, start=2):
            if len(row) < 2:
                skipped.append(f"{table}:{line}: expected 2 columns, found {len(row)}")
                continue
            name, caption = row[0].strip(), ",".join(row[1:]).strip()
            path = _inside(images, name)
            if path is None:
                skipped.append(f"{table}:{line}: image name {name!r} leaves the Images folder")
            elif not caption:
                skipped.append(f"{table}:{line}: empty caption")
            elif not path.is_file():
                skipped.append(f"{table}:{line}: image {name!r} not found in {images}")
            else:
                records.setdefault(name, CaptionRecord(path)).captions.append(caption)
    if not records:
        raise DataError(f"{table}: no usable rows ({len(skipped)} skipped)")
    return list(records.values()), skipped


def split_of_image(name: str, val: float = 0.1, test: float = 0.1) -> str:
    """train / val / test by a hash of the image name: stable across runs and machines."""
    bucket = zlib.crc32(name.encode()) % 1000 / 1000
    return "val" if bucket < val else ("test" if bucket < val + test else "train")


def open_image(path: str | Path) -> Image.Image:
    """An RGB image, upright (EXIF orientation applied); a clear error for anything else."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            if image.mode in ("RGBA", "LA", "P"):
                image = image.convert("RGBA")
                background = Image.new("RGBA", image.size, (255, 255, 255, 255))
                image = Image.alpha_composite(background, image)
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
        raise DataError(f"{path}: cannot read as an image ({err.__class__.__name__}: {err})") from err
