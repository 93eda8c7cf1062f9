"""What crosses between the student's code and the checker: data, as JSON and safetensors, never pickle.

A checker hands the student's function its inputs, and gets back what the
function returned, through this format only, in the notebook as in the
grader's sandbox: numbers, strings, None, lists, tuples and string-keyed
dicts as JSON; tensors as safetensors; an exception as its type's name, its
base classes' names and its message (`Raised`); anything else (a module, an
array, a generator) as its type's name and a short repr (`Opaque`). Nothing
the student's code made reaches the judging as a live object, so nothing it
defines (an `__eq__` that always says yes, a tensor subclass) runs there.

    tree, tensors = pack(value)          # JSON-able tree, {name: tensor}
    value = unpack(tree, tensors)
    blob = dumps(value); value = loads(blob)   # the same, as bytes
"""

from __future__ import annotations

import json
import math
import numbers
import struct

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

MAX_TEXT = 2_000  # characters of a string, a message or a repr kept
MAX_ITEMS = 1_000_000  # list items, dict entries and tensors in one value
MAX_DEPTH = 32
TAG = "$"  # the key that marks a tagged JSON object (a tensor, a tuple, ...)
DTYPES = {  # what safetensors stores; anything else goes as an Opaque
    torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
    torch.float16, torch.bfloat16, torch.float32, torch.float64,
}  # fmt: skip


class Opaque:
    """A value that is not data: its type's name (what messages print) and a short repr."""

    def __init__(self, type_name: str, module: str = "", text: str = ""):
        self.type_name, self.module, self.text = str(type_name), str(module), str(text)

    def __repr__(self) -> str:
        return self.text or f"<{self.type_name}>"


class Raised(Exception):
    """An exception the student's code raised, as data: type name, base class names, message."""

    def __init__(self, type_name: str, bases: list[str], message: str):
        super().__init__(message)
        self.type_name, self.bases, self.message = str(type_name), [str(b) for b in bases], str(message)

    @classmethod
    def of(cls, err: BaseException) -> Raised:
        if isinstance(err, Raised):
            return err
        return cls(type(err).__name__, [k.__name__ for k in type(err).__mro__], _text(err))

    def is_a(self, name: str) -> bool:
        return name in self.bases

    @property
    def not_implemented(self) -> bool:
        return self.is_a("NotImplementedError")

    def __str__(self) -> str:
        return self.message


def kind(value) -> str:
    """The type's name of a value, as messages say it ("ndarray", "Tensor", "list")."""
    return value.type_name if isinstance(value, Opaque) else type(value).__name__


def _text(value) -> str:
    try:
        text = str(value)
    except Exception as err:  # noqa: BLE001 (a student's __str__ may raise anything)
        text = f"<unprintable: {type(err).__name__}>"
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def _repr(value) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 200 else text[:197] + "..."


def pack(value) -> tuple[object, dict[str, torch.Tensor]]:
    """`value` as a JSON-able tree and the tensors it holds, by name."""
    tensors: dict[str, torch.Tensor] = {}
    count = [0]

    def walk(v, depth: int):
        count[0] += 1
        if count[0] > MAX_ITEMS or depth > MAX_DEPTH:
            return {TAG: "object", "type": type(v).__name__, "text": "(too large or too deeply nested)"}
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, str):
            return _text(v)
        if isinstance(v, Raised):
            return {TAG: "raised", "type": v.type_name, "bases": v.bases, "message": v.message}
        if isinstance(v, BaseException):
            return walk(Raised.of(v), depth)
        if isinstance(v, Opaque):
            return {TAG: "object", "type": v.type_name, "module": v.module, "text": v.text}
        if torch.is_tensor(v):
            if v.layout != torch.strided or v.dtype not in DTYPES or v.is_nested:
                return {TAG: "object", "type": "Tensor", "module": "torch", "text": f"a {v.dtype} {v.layout} tensor"}
            key = f"t{len(tensors)}"
            tensors[key] = v.detach().to("cpu").contiguous().clone()  # clone: safetensors refuses shared memory
            return {TAG: "tensor", "key": key}
        if isinstance(v, numbers.Integral):  # int, numpy's integers
            return int(v)
        if isinstance(v, numbers.Real):  # float, numpy's floats; JSON has no nan or inf
            f = float(v)
            return f if math.isfinite(f) else {TAG: "float", "value": repr(f)}
        if type(v) in (list, tuple):
            items = [walk(x, depth + 1) for x in v]
            return items if type(v) is list else {TAG: "tuple", "items": items}
        if type(v) is dict and all(isinstance(k, str) for k in v):
            return {TAG: "dict", "items": [[_text(k), walk(x, depth + 1)] for k, x in v.items()]}
        return {TAG: "object", "type": type(v).__name__, "module": str(getattr(type(v), "__module__", "")),
                "text": _repr(v)}  # fmt: skip

    return walk(value, 0), tensors


def unpack(tree, tensors: dict[str, torch.Tensor]):
    """The value `pack` described. Trusts nothing: an unknown shape of data becomes an Opaque."""

    def walk(t, depth: int):
        if depth > MAX_DEPTH:
            return Opaque("object", text="(too deeply nested)")
        if t is None or isinstance(t, (bool, int, float, str)):
            return t
        if isinstance(t, list):
            return [walk(x, depth + 1) for x in t]
        if not isinstance(t, dict):
            return Opaque("object", text="(unreadable)")
        tag = t.get(TAG)
        if tag == "tensor" and isinstance(tensors.get(t.get("key")), torch.Tensor):
            return tensors[t["key"]]
        if tag == "tuple" and isinstance(t.get("items"), list):
            return tuple(walk(x, depth + 1) for x in t["items"])
        if tag == "dict" and isinstance(t.get("items"), list):
            pairs = [p for p in t["items"] if isinstance(p, list) and len(p) == 2 and isinstance(p[0], str)]
            return {k: walk(x, depth + 1) for k, x in pairs}
        if tag == "float" and t.get("value") in ("nan", "inf", "-inf"):
            return float(t["value"])
        if tag == "raised":
            bases = t.get("bases") if isinstance(t.get("bases"), list) else []
            return Raised(_text(t.get("type", "Exception")), [_text(b) for b in bases], _text(t.get("message", "")))
        if tag == "object":
            return Opaque(_text(t.get("type", "object")), _text(t.get("module", "")), _text(t.get("text", "")))
        return Opaque("object", text="(unreadable)")

    return walk(tree, 0)


def dumps(value) -> bytes:
    """`value` as bytes: a 4-byte length, the JSON tree, then the safetensors file of its tensors."""
    tree, tensors = pack(value)
    text = json.dumps(tree, allow_nan=False).encode()
    return struct.pack("<I", len(text)) + text + (save_tensors(tensors) if tensors else b"")


def loads(blob: bytes):
    """The value `dumps` wrote. Raises ValueError on bytes that are not such a value."""
    if len(blob) < 4:
        raise ValueError("too short")
    (size,) = struct.unpack("<I", blob[:4])
    if 4 + size > len(blob):
        raise ValueError("cut short")
    tree = json.loads(blob[4 : 4 + size])
    rest = blob[4 + size :]
    try:
        tensors = load_tensors(rest) if rest else {}
    except Exception as err:  # noqa: BLE001 (safetensors raises its own error types)
        raise ValueError(f"tensors unreadable ({type(err).__name__})") from None
    return unpack(tree, tensors)


def roundtrip(value):
    """`value` after the trip through bytes: what the judging sees of it."""
    return loads(dumps(value))
