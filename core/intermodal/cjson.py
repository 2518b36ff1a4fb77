"""JSON through the C half of the `json` package (`_json`), for the start path and the stores.

`import json` imports json.decoder and json.encoder and with them `re` and
`enum`: ~5 ms of every container start in the monitor's launcher. `json.loads`
and `json.dumps` (without indent) run the same C scanner and encoder, so the
results are the same. What the C parts do not decide themselves (a BOM or
another encoding, an invalid document, a value that cannot be encoded, a
reference cycle) is handed to `json` itself, which then raises its own error.
"""

from __future__ import annotations

try:
    import _json  # at import, not at the first use: that is on the start's critical path (after the orders)
except ImportError:  # not CPython: json itself
    _json = None

TYPE_CHECKING = False  # not `typing` (~3 ms): the monitor's launcher imports this for every start
if TYPE_CHECKING:
    from typing import Any

_WHITESPACE = " \t\n\r"  # json.decoder.WHITESPACE


class _Context:
    """What `_json.make_scanner` reads from a `json.JSONDecoder` with the default options."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # 'NaN', 'Infinity', '-Infinity': what json's table gives
    memo: dict = {}  # read by the pure-Python scanner only; the C one keeps its own


def loads(data: str | bytes | bytearray) -> Any:
    """`json.loads(data)`."""
    text = _text(data)
    if text is None:
        return _json_module().loads(data)
    if _json is None:
        return _json_module().loads(data)
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _json.make_scanner(_Context())(text, start)
    except StopIteration:
        return _json_module().loads(data)  # nothing to read: json says why
    if end != len(text.rstrip(_WHITESPACE)):
        return _json_module().loads(data)  # extra data after the document: json says where
    return value


def _text(data: str | bytes | bytearray) -> str | None:
    """*data* as json.loads would read it, or None where it would detect another encoding or a BOM."""
    if isinstance(data, str):
        return None if data.startswith("\ufeff") else data
    if not isinstance(data, (bytes, bytearray)):
        return None
    if data[:1] in (b"\xef", b"\xfe", b"\xff") or (len(data) >= 2 and (data[0] == 0 or data[1] == 0)):
        return None  # UTF-8 with a BOM, UTF-16 or UTF-32 (json.detect_encoding)
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return None


def dumps(value: Any, *, indent: int | None = None, sort_keys: bool = False,
          separators: tuple[str, str] | None = None) -> str:
    """`json.dumps(value, indent=indent, sort_keys=sort_keys, separators=separators)`; other options are
    json's defaults (*separators* only without *indent*)."""
    if indent is not None:
        out: list[str] = []
        if separators is None and _indented(value, indent, sort_keys, 0, set(), out):
            return "".join(out)
        return _json_module().dumps(value, indent=indent, sort_keys=sort_keys, separators=separators)
    if _json is None:
        return _json_module().dumps(value, sort_keys=sort_keys, separators=separators)
    if isinstance(value, str):
        return _json.encode_basestring_ascii(value)
    item_separator, key_separator = separators or (", ", ": ")
    # The arguments json.JSONEncoder.iterencode passes for dumps' defaults.
    encode = _json.make_encoder({}, _not_serializable, _json.encode_basestring_ascii, None, key_separator,
                                item_separator, sort_keys, False, True)
    return "".join(encode(value, 0))


def _not_serializable(o: object) -> Any:
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")  # json's words


def _indented(value: Any, indent: int, sort_keys: bool, level: int, seen: set[int], out: list[str]) -> bool:
    """Append what json's indenting encoder writes for *value*; False for what json must handle
    (keys other than strings, a cycle), then *out* is not to be used."""
    if isinstance(value, dict):
        if not value:
            out.append("{}")
            return True
        if not all(isinstance(k, str) for k in value):
            return False
        items = sorted(value.items()) if sort_keys else value.items()
        opening, closing = "{", "}"
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return True
        items = ((None, v) for v in value)
        opening, closing = "[", "]"
    else:
        out.append(dumps(value))
        return True
    if id(value) in seen:
        return False
    seen.add(id(value))
    inner = "\n" + " " * (indent * (level + 1))
    out.append(opening)
    for i, (key, item) in enumerate(items):
        out.append(inner if i == 0 else "," + inner)
        if key is not None:
            out.append(dumps(key) + ": ")
        if not _indented(item, indent, sort_keys, level + 1, seen, out):
            return False
    out.append("\n" + " " * (indent * level) + closing)
    seen.discard(id(value))
    return True


def _json_module():
    import json

    return json
