"""The build cache: the state after a step, found again by what the step depended on.

A step is reused when its parent state (the image config so far, which
names every layer and history entry), its instruction text, the build args
in scope and the digest of the files it copies are the same. Entries live
under ``<engine root>/build-cache/<key>.json`` and hold the state's config
and layer descriptors; an entry whose layer blobs were pruned is a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from intermodal.fsutil import atomic_write_json, read_json
from intermodal.images.manifest import canonical_json

CACHE_VERSION = 1


@dataclass
class State:
    """An image being built: its whole config and its layers' blob descriptors (JSON), bottom first."""

    config: dict[str, Any]
    layers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        """The image id this state would get: the digest of its config."""
        return "sha256:" + hashlib.sha256(canonical_json(self.config)).hexdigest()

    @property
    def diff_ids(self) -> list[str]:
        return list(self.config.get("rootfs", {}).get("diff_ids", []))

    def copy(self) -> State:
        return State(json.loads(json.dumps(self.config)), [dict(d) for d in self.layers])


def key(parent: State, instruction: str, args: dict[str, str], content: str = "") -> str:
    text = json.dumps([CACHE_VERSION, parent.id, instruction, sorted(args.items()), content])
    return hashlib.sha256(text.encode()).hexdigest()


class BuildCache:
    def __init__(self, root: Path, blobs: Any) -> None:
        self.dir = root / "build-cache"
        self.blobs = blobs

    def get(self, cache_key: str) -> State | None:
        value = read_json(self.dir / f"{cache_key}.json", default=None)
        if not isinstance(value, dict) or value.get("version") != CACHE_VERSION:
            return None
        state = State(value["config"], value["layers"])
        if not all(self.blobs.has(d["digest"]) for d in state.layers):
            return None  # `imod image prune` took a layer: build the step again
        return state

    def put(self, cache_key: str, state: State) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.dir / f"{cache_key}.json",
                          {"version": CACHE_VERSION, "config": state.config, "layers": state.layers})

    def clear(self) -> int:
        count = 0
        for entry in os.scandir(self.dir) if self.dir.is_dir() else ():
            if entry.name.endswith(".json"):
                os.unlink(entry.path)
                count += 1
        return count
