"""v2 hugetlb controller: ``hugetlb.<size>.max``."""

from __future__ import annotations

from intermodal.errors import InvalidSpec
from intermodal.runtime.cgroups.manager import exists, write

NAME = "hugetlb"


def applies(resources: dict) -> bool:
    return bool(resources.get("hugepageLimits"))


def apply(path: str, resources: dict) -> list[str]:
    for i, hp in enumerate(resources["hugepageLimits"]):
        name = f"hugetlb.{hp['pageSize']}.max"
        if not exists(path, name):
            raise InvalidSpec(f"linux.resources.hugepageLimits[{i}].pageSize: {hp['pageSize']!r} is not a huge "
                              "page size here or hugetlb is not enabled for this cgroup; fix config.json")
        write(path, name, hp["limit"])
    return []
