"""Run every benchmark in bench/ and print their tables (`make bench`).

Each benchmark module has `main() -> str` returning its markdown table;
`python bench/run.py NAME...` runs only those.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def main(names: list[str]) -> int:
    modules = names or sorted(p.stem for p in HERE.glob("*.py") if p.stem not in ("__init__", "common", "run"))
    for name in modules:
        module = importlib.import_module(f"bench.{name}")
        print(module.main(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
