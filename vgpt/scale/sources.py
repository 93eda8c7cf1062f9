"""Any caption source the command line and the notebooks accept, as `data.Captions`:

a folder in a Flickr8k layout   Kaggle, the original release, Karpathy's split (`flickr8k.py`)
a COCO folder                   dataset_coco.json beside train2014/ and val2014/ (`coco.py`)
a Hugging Face dataset          a Hub id, a save_to_disk folder, parquet files (`hf_data.py`)
"""

from __future__ import annotations

from pathlib import Path

from ..data import Captions, DataError
from . import coco, hf_data
from .flickr8k import KARPATHY_FILE, TOKEN_FILE, load_flickr8k


def load_captions(source: str | Path) -> Captions:
    """A caption data set grouped by image, from any of the sources above."""
    folder = Path(source)
    if folder.is_dir() and (folder / coco.COCO_FILE).is_file():
        return coco.load_coco_captions(folder)
    found = load_flickr8k(folder) if folder.is_dir() else None
    if found is not None:
        return found
    if hf_data.hf_source_kind(source):
        return hf_data.load_hf_captions(source)
    if not folder.is_dir():
        raise DataError(f"{source}: not a folder, a parquet file or a Hugging Face Hub id (owner/name)")
    raise DataError(
        f"{folder}: no caption file; expected captions.txt (Kaggle layout), {TOKEN_FILE} "
        f"(original release) or {KARPATHY_FILE} (Karpathy split), with an image folder; "
        f"{coco.COCO_FILE} (COCO); or a Hugging Face dataset (a save_to_disk folder, parquet files)"
    )
