"""A small subset of Docker's Go-template `--format`, enough for scripts.

Supports `json` (one JSON object per line), `{{json .}}`, `{{.Field}}`,
`{{json .Field}}`, and a leading `table ` that prints a header row.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from intermodal.errors import InvalidArgument

_FIELD = re.compile(r"{{\s*(json\s+)?\.([A-Za-z_][A-Za-z0-9_.]*)?\s*}}")


def render(template: str, rows: Iterable[Mapping[str, Any]]) -> None:
    rows = list(rows)
    if template == "json":
        for row in rows:
            sys.stdout.write(json.dumps(row, default=str) + "\n")
        return
    table = template.startswith("table ")
    body = template[6:] if table else template
    body = body.replace("\\t", "\t").replace("\\n", "\n")
    if not _FIELD.search(body):
        raise InvalidArgument(f"unsupported --format {template!r}: use 'json' or a template like '{{{{.ID}}}}'")
    lines = []
    if table:
        lines.append(_FIELD.sub(lambda m: _header(m.group(2) or ""), body))
    for row in rows:
        lines.append(_FIELD.sub(lambda m, row=row: _value(row, m.group(2), bool(m.group(1))), body))
    sys.stdout.write("\n".join(lines) + ("\n" if lines else ""))


def _value(row: Mapping[str, Any], path: str | None, as_json: bool) -> str:
    value: Any = row
    for part in (path or "").split(".") if path else ():
        if not isinstance(value, Mapping) or part not in value:
            raise InvalidArgument(f"--format: field {path!r} does not exist; available: {', '.join(row)}")
        value = value[part]
    if as_json:
        return json.dumps(value, default=str)
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(str(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{v}" for k, v in value.items()) + "]"
    return str(value)


def _header(path: str) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", path.split(".")[-1]).upper()
