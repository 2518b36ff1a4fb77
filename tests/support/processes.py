"""What the tests look up about processes and modules, from /proc and the source."""

from __future__ import annotations

import ast
import os
from pathlib import Path


def process_group(pgid: int) -> list[int]:
    """The live (not zombie) processes of the process group *pgid*."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                data = Path(f"/proc/{entry}/stat").read_bytes()
            except OSError:
                continue
            fields = data[data.rindex(b")") + 2:].split()
            if int(fields[2]) == pgid and fields[0] != b"Z":
                out.append(int(entry))
    return out


def module_imports(path: Path) -> list[str]:
    """Modules *path* imports when it is imported: its top-level imports, not those for type checkers."""
    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module or "")
    return names
