"""The other ways Flickr8k is handed out, beside the Kaggle layout `data.py` reads:

- the original release: `Flicker8k_Dataset/` (sic) + `Flickr8k.token.txt` (`name.jpg#0<TAB>caption`)
  and the split lists `Flickr_8k.trainImages.txt`, `Flickr_8k.devImages.txt`, `Flickr_8k.testImages.txt`;
- the Karpathy split file `dataset_flickr8k.json` beside an image folder;
- a Kaggle table whose image folder has one of the other names.

The standard split (6000 / 1000 / 1000 images) comes from the split lists or the Karpathy file,
whichever the folder has; without either, from a hash of each image name.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..data import KAGGLE_TABLE, Captions, DataError, Rows, read_kaggle_table

IMAGE_FOLDERS = ("Images", "Flicker8k_Dataset", "Flickr8k_Dataset")  # Kaggle, original (sic), fixed
TOKEN_FILE = "Flickr8k.token.txt"
KARPATHY_FILE = "dataset_flickr8k.json"
SPLIT_LISTS = {
    "train": "Flickr_8k.trainImages.txt",
    "val": "Flickr_8k.devImages.txt",
    "test": "Flickr_8k.testImages.txt",
}


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


def _read_token_file(table: Path, rows: Rows) -> None:
    with open(table, encoding="utf-8") as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            name, tab, caption = text.rstrip("\n").partition("\t")
            if not tab or "#" not in name:
                rows.skipped.append(f"{table}:{line}: expected 'image.jpg#n<TAB>caption'")
            else:
                rows.add(f"{table}:{line}", name.rsplit("#", 1)[0], caption)


def _read_karpathy(path: Path, rows: Rows) -> None:
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


def load_flickr8k(folder: Path) -> Captions | None:
    """A folder in any of the three Flickr8k layouts, or None if it holds none of their caption files."""
    found = _caption_table(folder)
    if found is None:
        return None
    layout, table = found
    rows = Rows(_image_folder(folder, table))
    {"karpathy": _read_karpathy, "original": _read_token_file, "kaggle": read_kaggle_table}[layout](table, rows)
    captions = rows.found(table, layout, "a hash of each image name (no split lists found)")
    if layout == "karpathy":
        captions.split_source = f"the split field of {table.name}"
    elif lists := _split_lists(folder):
        for r in captions.records:
            r.split = lists.get(r.image_id, "unlisted")
        captions.split_source = "the split lists " + ", ".join(SPLIT_LISTS.values())
    return captions
