"""v1 blkio controller: weights (bfq or cfq) and throttling (cgroup-v1/blkio-controller.rst)."""

from __future__ import annotations

from intermodal.errors import InvalidSpec
from intermodal.runtime.cgroups.manager import exists, write

NAME = "blkio"
_THROTTLE = {
    "throttleReadBpsDevice": "blkio.throttle.read_bps_device",
    "throttleWriteBpsDevice": "blkio.throttle.write_bps_device",
    "throttleReadIOPSDevice": "blkio.throttle.read_iops_device",
    "throttleWriteIOPSDevice": "blkio.throttle.write_iops_device",
}


def applies(resources: dict) -> bool:
    return any(v not in (None, []) for v in (resources.get("blockIO") or {}).values())


def apply(path: str, resources: dict) -> list[str]:
    bio = resources["blockIO"]
    # With the bfq scheduler the weight file is blkio.bfq.weight; cfq (gone since 5.0) had blkio.weight.
    weight_file = "blkio.weight" if exists(path, "blkio.weight") else "blkio.bfq.weight"
    if bio.get("weight") is not None:
        _need(path, weight_file, "linux.resources.blockIO.weight")
        write(path, weight_file, bio["weight"])
    if bio.get("leafWeight") is not None:
        _need(path, "blkio.leaf_weight", "linux.resources.blockIO.leafWeight")
        write(path, "blkio.leaf_weight", bio["leafWeight"])
    for i, dev in enumerate(bio.get("weightDevice") or []):
        where = f"linux.resources.blockIO.weightDevice[{i}]"
        if dev.get("weight") is not None:
            # bfq takes "major:minor weight" in the same file as the default weight.
            target = "blkio.weight_device" if weight_file == "blkio.weight" else weight_file
            _need(path, target, where)
            write(path, target, f"{dev['major']}:{dev['minor']} {dev['weight']}")
        if dev.get("leafWeight") is not None:
            _need(path, "blkio.leaf_weight_device", where)
            write(path, "blkio.leaf_weight_device", f"{dev['major']}:{dev['minor']} {dev['leafWeight']}")
    for key, name in _THROTTLE.items():
        for dev in bio.get(key) or []:
            write(path, name, f"{dev['major']}:{dev['minor']} {dev['rate']}")
    return []


def _need(path: str, name: str, where: str) -> None:
    if not exists(path, name):
        raise InvalidSpec(f"{where}: this host's blkio controller has no {name} (no bfq/cfq I/O scheduler); "
                          "remove the weight from config.json or enable the bfq scheduler")
