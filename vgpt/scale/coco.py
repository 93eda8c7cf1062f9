"""COCO captions in Karpathy's split: `dataset_coco.json` beside `train2014/` and `val2014/`.

Karpathy's file (in his `caption_datasets.zip`) lists every image of COCO 2014
once, with its captions and its split:

    {"images": [{"filepath": "val2014", "filename": "COCO_val2014_000000391895.jpg",
                 "split": "test", "cocoid": 391895,
                 "sentences": [{"raw": "A man with a red helmet on a small moped ...",
                                "tokens": ["a", "man", "with", ...]}, ...]}, ...]}

123,287 images: 113,287 to train on (82,783 "train" and 30,504 "restval", the
val2014 images left over after val and test, which papers on this split train
on too, so they count as train here), 5,000 "val" and 5,000 "test", about five
captions each. Published COCO caption figures are on those 5,000 test images.

`load_coco_captions(folder)` returns the same `data.Captions` as the Flickr8k
layouts, so the feature cache, training and evaluation need nothing of their
own. An image is `filepath/filename` inside the data folder. An entry whose
image leaves the folder, is missing, or whose split is unknown is skipped once
(not once per caption); an empty or repeated caption is skipped on its own;
each skip names the file, the entry and the reason.

`published_lines` prints a run's BLEU-4 and CIDEr-D on the x100 scale papers
use, beside ClipCap's published figures, labelled as theirs.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from ..data import CaptionRecord, Captions, DataError, inside

COCO_FILE = "dataset_coco.json"
LAYOUT = "coco"  # Captions.layout of a folder read here
SPLITS = {"train": "train", "restval": "train", "val": "val", "test": "test"}  # Karpathy's split -> ours

# Mokady, Hertz and Bermano, "ClipCap: CLIP Prefix for Image Captioning", arXiv 2111.09734, Table 1:
# COCO, Karpathy test split, x100. Their numbers, for scale; never this project's.
CLIPCAP_SOURCE = "ClipCap (Mokady et al. 2021, arXiv 2111.09734, Table 1), COCO Karpathy test"
CLIPCAP = (  # (setting, BLEU-4, CIDEr)
    ("transformer mapper, frozen GPT-2", 33.53, 113.08),
    ("MLP mapper, GPT-2 fine-tuned", 32.15, 108.35),
)


def _caption(sentence) -> str:
    """A sentence's text: its `raw` string, else its `tokens` joined; whitespace collapsed."""
    if not isinstance(sentence, dict):
        return ""
    text = sentence.get("raw")
    if not isinstance(text, str):
        tokens = sentence.get("tokens")
        text = " ".join(t for t in tokens if isinstance(t, str)) if isinstance(tokens, list) else ""
    return " ".join(text.split())


def _entry_problem(folder: Path, entry) -> tuple[str | None, str, Path | None]:
    """(what is wrong with an `images[i]` entry or None, its image name, its path)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("filename"), str):
        return "no 'filename'", "", None
    filepath = entry.get("filepath", "")
    if not isinstance(filepath, str):
        return f"'filepath' is not a string ({filepath!r})", entry["filename"], None
    name = f"{filepath}/{entry['filename']}" if filepath else entry["filename"]
    path = inside(folder, name)
    if path is None:
        return f"image name {name!r} leaves the data folder", name, None
    if entry.get("split") not in SPLITS:
        return f"split {entry.get('split')!r} is not one of {', '.join(SPLITS)}", name, path
    if not isinstance(entry.get("sentences"), list):
        return "no 'sentences' list", name, path
    if not path.is_file():
        return f"image {name!r} not found in {folder}", name, path
    return None, name, path


def load_coco_captions(folder: str | Path) -> Captions:
    """COCO in Karpathy's split from `folder/dataset_coco.json`, grouped by image (see the module doc)."""
    folder = Path(folder)
    table = folder / COCO_FILE
    try:
        entries = json.loads(table.read_text(encoding="utf-8"))["images"]
        if not isinstance(entries, list):
            raise TypeError(f"'images' is a {type(entries).__name__}, not a list")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(
            f"{table}: not Karpathy's COCO split file (a JSON object with an 'images' list): "
            f"{err.__class__.__name__}: {err}"
        ) from err
    records: dict[str, CaptionRecord] = {}
    skipped: list[str] = []
    kept_splits: Counter = Counter()
    for i, entry in enumerate(entries):
        where = f"{table}: images[{i}]"
        problem, name, path = _entry_problem(folder, entry)
        if problem:
            skipped.append(f"{where}: {problem}")
            continue
        split = SPLITS[entry["split"]]
        for j, sentence in enumerate(entry["sentences"]):
            caption = _caption(sentence)
            if not caption:
                skipped.append(f"{where}.sentences[{j}]: empty caption")
            elif name in records and caption in records[name].captions:
                skipped.append(f"{where}.sentences[{j}]: duplicate of an earlier caption of {name!r}")
            else:
                if name not in records:
                    records[name] = CaptionRecord(path, split=split)
                    kept_splits[entry["split"]] += 1
                records[name].captions.append(caption)
    if not records:
        raise DataError(
            f"{table}: no usable images ({len(skipped)} entries or captions skipped"
            + (f"; first: {skipped[0]})" if skipped else ")")
        )
    counts = ", ".join(f"{kept_splits[s]:,} {s}" for s in SPLITS)
    source = f"Karpathy's split field in {COCO_FILE} ({counts}; restval counted as train)"
    return Captions(list(records.values()), skipped, LAYOUT, source)


def published_lines(scores: dict[str, float], split: str) -> list[str]:
    """This run's BLEU-4 and CIDEr-D x100, then ClipCap's published COCO figures, labelled as theirs.

    `scores` are `metrics.caption_scores` (0-1 for BLEU, CIDEr-D as the COCO
    scorer returns it, about 1.1 for a good COCO captioner); papers print both
    times 100. Their "CIDEr" is the COCO scorer's CIDEr-D, computed as here
    but after the Stanford PTB tokenizer (see `metrics.py`).
    """
    where = "" if split == "test" else f" (this run's figures are on {split}, theirs on test)"
    lines = [
        f"x100, as papers print them: BLEU-4 {100 * scores['BLEU-4']:.2f}, "
        f"CIDEr-D {100 * scores['CIDEr-D']:.2f} (this run, {split}){where}",
        f"published, NOT this run: {CLIPCAP_SOURCE}:",
    ]
    lines += [f"  BLEU-4 {bleu4:.2f}, CIDEr {cider:.2f}  ClipCap, {setting}" for setting, bleu4, cider in CLIPCAP]
    return lines
