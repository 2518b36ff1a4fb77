"""`--network` values: which kind of networking a container gets.

``bridge`` or a network name (several `--network` flags allowed) joins those
networks through `NetworkManager.attach`; ``none`` is a new namespace with
only loopback; ``host`` shares the host's namespace; ``container:NAME``
shares another container's namespace. The last three stand alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from intermodal.errors import InvalidArgument

ALONE = ("none", "host")


@dataclass(frozen=True)
class NetworkMode:
    kind: str  # "networks", "none", "host" or "container"
    networks: tuple[str, ...] = ()  # for "networks": their names, the first gets the default route
    container: str | None = None  # for "container": whose namespace to join

    @property
    def needs_attach(self) -> bool:
        return self.kind == "networks"

    @property
    def own_namespace(self) -> bool:
        """The runtime makes a new network namespace (bridge networks and none)."""
        return self.kind in ("networks", "none")


def parse_mode(values: Sequence[str] | str | None, default: str = "bridge") -> NetworkMode:
    items = [values] if isinstance(values, str) else list(values or [])
    items = [v.strip() for v in items if v.strip()] or [default]
    special = [v for v in items if v in ALONE or v.startswith("container:")]
    if special and len(items) > 1:
        raise InvalidArgument(f"--network {special[0]} cannot be combined with other networks; give it alone")
    first = items[0]
    if first in ALONE:
        return NetworkMode(first)
    if first.startswith("container:"):
        ref = first.partition(":")[2]
        if not ref:
            raise InvalidArgument("--network container: needs a container name or id, e.g. container:web")
        return NetworkMode("container", container=ref)
    if len(set(items)) != len(items):
        raise InvalidArgument(f"--network lists a network twice: {', '.join(items)}")
    return NetworkMode("networks", tuple(items))
