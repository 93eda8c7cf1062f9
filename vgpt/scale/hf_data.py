"""Caption data sets from Hugging Face `datasets`: a Hub id, a `save_to_disk` folder, or parquet files.

Two table shapes load:

    one caption per row   image, caption                     the seed recipe's `ariG23498/flickr8k`
    one image per row     image, caption_0 ... caption_4      (or a `caption` column holding a list)

Both become the `data.CaptionRecord`s the Flickr8k folders give, one per image with all its
captions, so the feature cache, training, evaluation and the notebooks keep one code path.
The only difference: a record's image is not a file but bytes inside the dataset's Arrow
files, decoded when something opens it (`CaptionRecord.open`), with the checks files get.

One caption per row is grouped by image: by file name where the dataset has one (a
`file_name`-like column, else the name kept in the image feature's `path`), else by a hash of
the image bytes. A name is trusted only if all its rows hold images of one byte length; if
not, every row is grouped by hash. One image per row needs no grouping: names are its ids
when every row has a distinct one, hashes otherwise.

The split comes from the dataset's own splits (train; validation, valid, val or dev; test)
where it has two or more of them, else from a `split` column, else from the stable hash of
the image name that folders without split lists get. `Captions` says which it did.

`datasets` is optional (`pip install "vgpt[hf]"`) and imported only when such a source loads.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path

from ..data import CaptionRecord, Captions, DataError, Rows, open_image

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
NAME_COLUMNS = ("file_name", "filename", "image_name", "image_id", "image_path")
SPLIT_NAMES = {
    "train": "train",
    "restval": "train",
    "validation": "val",
    "valid": "val",
    "val": "val",
    "dev": "val",
    "test": "test",
}
BATCH_ROWS = 1000  # rows per Arrow batch while grouping (slices of the memory-mapped files)
INSTALL = 'reading a Hugging Face dataset needs the `datasets` library: pip install "vgpt[hf]"'


def hf_source_kind(source) -> str | None:
    """'disk' (a `save_to_disk` folder), 'parquet' (a parquet file, or a folder with some),
    'hub' (an `owner/name` that is not a path here), or None for anything else."""
    path = Path(source)
    if path.is_dir():
        if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
            return "disk"
        return "parquet" if next(path.rglob("*.parquet"), None) else None
    if path.is_file():
        return "parquet" if path.suffix == ".parquet" else None
    return "hub" if HUB_ID.fullmatch(str(source)) and ".." not in str(source) else None


def _datasets():
    try:
        import datasets
    except ImportError as err:
        raise DataError(INSTALL) from err
    return datasets


def open_tables(source) -> dict:
    """The source's tables by split name ('' for a dataset without splits), as `datasets.Dataset`s."""
    datasets, kind, path = _datasets(), hf_source_kind(source), Path(source)
    try:
        if kind == "disk":
            loaded = datasets.load_from_disk(str(path))
        elif kind == "parquet" and path.is_file():
            loaded = datasets.load_dataset("parquet", data_files=str(path))
        else:  # a folder of parquet files (splits named by their files) or a Hub id
            loaded = datasets.load_dataset(str(source))
    except Exception as err:  # datasets fails in many ways (offline, no such dataset, bad files): one line each
        what = "no such folder here, and the Hugging Face Hub cannot give it" if kind == "hub" else "cannot load"
        detail = (str(err).strip().splitlines() or [""])[0][:300]
        raise DataError(f"{source}: {what} ({err.__class__.__name__}: {detail})") from err
    return dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"": loaded}


def _caption_columns(where: str, table) -> tuple[str, list[str]]:
    """The table's shape and caption columns: ('caption', ['caption']) for one caption per row;
    ('image', ['caption_0', ...]) or ('image', ['caption']) (a list per row) for one image per row."""
    import pyarrow as pa

    columns = table.column_names
    if "image" not in columns:
        raise DataError(f"{where}: no 'image' column (columns: {', '.join(columns)})")
    numbered = sorted((c for c in columns if re.fullmatch(r"caption_\d+", c)), key=lambda c: int(c[8:]))
    if numbered:
        return "image", numbered
    if "caption" in columns:
        kind = table.data.schema.field("caption").type
        listed = pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
        return ("image" if listed else "caption"), ["caption"]
    raise DataError(
        f"{where}: no captions: expected a 'caption' column (one caption per row) or "
        f"'caption_0', 'caption_1', ... (one image per row); columns: {', '.join(columns)}"
    )


def _image_parts(where: str, batch) -> tuple[list, list]:
    """Per row of an Arrow batch: the image's byte length (None if no bytes) and its stored path."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = batch.column("image")  # a chunked array: slices of the memory-mapped files, not copies
    if pa.types.is_struct(column.type):
        parts = dict(zip([f.name for f in column.type], column.flatten(), strict=True))  # parent nulls carried over
        data, paths = parts.get("bytes"), parts.get("path")
    elif pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        data, paths = column, None
    else:
        raise DataError(f"{where}: column 'image' holds {column.type}, not images")
    sizes = pc.binary_length(data).to_pylist() if data is not None else [None] * len(column)
    return sizes, (paths.to_pylist() if paths is not None else [None] * len(column))


def _basename(value) -> str | None:
    name = str(value).replace("\\", "/").rsplit("/", 1)[-1].strip() if value is not None else ""
    return name if name not in ("", ".", "..") else None


def image_bytes(table, row: int, where: str) -> bytes:
    """The encoded image of one row: its stored bytes, else the file its `path` names."""
    value = table[row].column("image")[0].as_py()
    data, path = (value.get("bytes"), value.get("path")) if isinstance(value, dict) else (value, None)
    if data is None and path and Path(path).is_file():
        data = Path(path).read_bytes()
    if data is None:
        raise DataError(f"{where}: no image bytes" + (f", and no file at {path}" if path else ""))
    return data


def open_row_image(table, row: int, where: str):
    """The image of one row, RGB and upright, or a `DataError` naming the row (see `data.open_image`)."""
    return open_image(io.BytesIO(image_bytes(table, row, where)), name=where)


def _scan(source: str, tables: dict, rows: Rows) -> tuple[str, list[dict]]:
    """Every row of every table, read once in Arrow batches (image bytes not decoded)."""
    shape, found = None, []
    for split, table in tables.items():
        label = f"{source} [{split}]" if split else source
        kind, caption_columns = _caption_columns(label, table)
        if shape not in (None, kind):
            raise DataError(f"{label}: splits of one dataset hold different kinds of table")
        shape, arrow = kind, table.with_format("arrow")
        name_column = next((c for c in NAME_COLUMNS if c in table.column_names), None)
        for start in range(0, len(table), BATCH_ROWS):
            batch = arrow[start : start + BATCH_ROWS]
            sizes, paths = _image_parts(label, batch)
            names = batch.column(name_column).to_pylist() if name_column else paths
            splits = batch.column("split").to_pylist() if "split" in batch.column_names else [None] * len(sizes)
            texts = [batch.column(c).to_pylist() for c in caption_columns]
            for i, (size, path) in enumerate(zip(sizes, paths, strict=True)):
                where = f"{label} row {start + i}"
                if size is None and not (path and Path(path).is_file()):
                    rows.skipped.append(f"{where}: no image" + (f" (no file at {path})" if path else ""))
                    continue
                if shape == "image" and caption_columns == ["caption"]:  # a list of captions per row
                    captions = [(f" caption[{k}]", c) for k, c in enumerate(texts[0][i] or [])]
                elif shape == "image":
                    captions = [(f" {column}", t[i]) for column, t in zip(caption_columns, texts, strict=True)]
                else:
                    captions = [("", texts[0][i])]
                found.append(
                    {
                        "where": where,
                        "table": arrow,
                        "row": start + i,
                        "size": size,
                        "split": split,
                        "name": _basename(names[i]),
                        "split_value": splits[i],
                        "captions": [(suffix, "" if c is None else str(c)) for suffix, c in captions],
                    }
                )
    return shape, found


def _names_identify_images(shape: str, found: list[dict]) -> str | None:
    """None if file names can be the ids; else why not."""
    if shape == "image":
        names = [r["name"] for r in found]
        if None in names:
            return "some rows have no file name"
        return None if len(set(names)) == len(names) else "file names repeat across rows"
    sizes: dict[str, int] = {}
    for r in found:
        if r["name"] is not None and r["size"] is not None and sizes.setdefault(r["name"], r["size"]) != r["size"]:
            return f"rows named {r['name']!r} hold different images"
    return None


def _split_rule(tables: dict, found: list[dict]) -> tuple[Callable[[dict], str | None], str]:
    """How a row gets its split, and the sentence that says so."""
    known = {SPLIT_NAMES.get(name.lower()) for name in tables} - {None}
    if len(known) >= 2:
        named = ", ".join(tables)
        return (lambda r: SPLIT_NAMES.get(r["split"].lower(), r["split"])), f"the dataset's splits ({named})"
    if any(r["split_value"] is not None for r in found):
        return (lambda r: SPLIT_NAMES.get(str(r["split_value"]).lower(), r["split_value"])), "its 'split' column"
    if len(tables) > 1:
        why = f"its splits {', '.join(tables)} are not train / validation / test"
    else:
        why = f"the dataset has one split, {next(iter(tables))!r}" if tables.keys() != {""} else "it has no splits"
    return (lambda r: None), f"a hash of each image name ({why})"


def load_hf_captions(source) -> Captions:
    """A Hugging Face caption dataset as `data.Captions` (see the module doc); bad rows skipped and counted."""
    source = str(source)
    tables, rows = open_tables(source), Rows()
    shape, found = _scan(source, tables, rows)
    distrust = _names_identify_images(shape, found)
    by_hash = [r for r in found if distrust or r["name"] is None]
    for r in by_hash:
        try:
            r["name"] = "image-" + hashlib.sha256(image_bytes(r["table"], r["row"], r["where"])).hexdigest()[:16]
        except (DataError, OSError) as err:
            rows.skipped.append(f"{r['where']}: cannot read the image bytes ({err})")
            r["name"] = None
    split_of, split_source = _split_rule(tables, found)
    for r in found:
        if r["name"] is None:
            continue
        opener = partial(open_row_image, r["table"], r["row"], r["where"])
        make = partial(CaptionRecord, Path(r["name"]), split=split_of(r), opener=opener)
        for suffix, caption in r["captions"]:
            rows.keep(r["where"] + suffix, r["name"], caption, make)
    records = list(rows.records.values())
    if not records:
        raise DataError(
            f"{source}: no usable rows ({len(rows.skipped)} skipped"
            + (f"; first: {rows.skipped[0]})" if rows.skipped else ")")
        )
    if not by_hash:
        grouped = "file name"
    elif distrust or len(by_hash) == len(found):
        grouped = f"a hash of the image bytes, as {distrust or 'the rows have no file names'}"
    else:
        grouped = f"file name, or a hash of the image bytes for the {len(by_hash)} rows without one"
    layout = "Hugging Face (one caption per row)" if shape == "caption" else "Hugging Face (one image per row)"
    return Captions(records, rows.skipped, layout, split_source, grouped_by=grouped)
