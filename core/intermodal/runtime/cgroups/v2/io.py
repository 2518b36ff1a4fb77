"""v2 io controller: ``io.weight`` (or ``io.bfq.weight``) and ``io.max``."""

from __future__ import annotations

from intermodal.errors import InvalidSpec
from intermodal.runtime.cgroups.manager import exists, write

NAME = "io"
_MAX_KEY = {
    "throttleReadBpsDevice": "rbps", "throttleWriteBpsDevice": "wbps",
    "throttleReadIOPSDevice": "riops", "throttleWriteIOPSDevice": "wiops",
}


def applies(resources: dict) -> bool:
    return any(v not in (None, []) for v in (resources.get("blockIO") or {}).values())


def blkio_to_io_weight(weight: int) -> int:
    """v1 blkio weight (10..1000) to v2 io weight (1..10000), runc's formula."""
    if weight == 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def apply(path: str, resources: dict) -> list[str]:
    bio = resources["blockIO"]
    warnings: list[str] = []
    # bfq has its own file, with the v1 scale (1..1000); io.weight exists with io.cost.
    if exists(path, "io.bfq.weight"):
        wfile, conv = "io.bfq.weight", (lambda w: w)
    else:
        wfile, conv = "io.weight", blkio_to_io_weight
    if bio.get("weight") is not None:
        if not exists(path, wfile):
            raise InvalidSpec("linux.resources.blockIO.weight: no io.weight/io.bfq.weight on this host "
                              "(no bfq scheduler or io.cost); remove the weight from config.json")
        write(path, wfile, f"default {conv(bio['weight'])}" if wfile == "io.weight" else conv(bio["weight"]))
    for dev in bio.get("weightDevice") or []:
        if dev.get("weight") is not None:
            write(path, wfile, f"{dev['major']}:{dev['minor']} {conv(dev['weight'])}")
    if bio.get("leafWeight") is not None or any(d.get("leafWeight") is not None for d in bio.get("weightDevice") or []):
        warnings.append("linux.resources.blockIO.leafWeight has no cgroup v2 equivalent; not applied")
    for key, word in _MAX_KEY.items():
        for dev in bio.get(key) or []:
            rate = dev["rate"] or "max"
            write(path, "io.max", f"{dev['major']}:{dev['minor']} {word}={rate}")
    return warnings
