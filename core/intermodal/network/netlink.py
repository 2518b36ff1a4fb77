"""pyroute2 behind one factory: every netlink call of intermodal goes through here.

`iproute(netns)` opens ``IPRoute`` (never NDB or IPDB) in the host namespace
or in the namespace file *netns*, without ``O_CREAT``: a missing namespace is
an error, not a new empty one. `call()` runs one operation and turns
``NetlinkError`` into `intermodal.errors` through `_translate`, the one place
that knows errno meanings. pyroute2 is imported inside functions only, so
`imod ps` never pays for it (~230 ms).
"""

from __future__ import annotations

import contextlib
import errno as E
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from intermodal.errors import AlreadyExists, InvalidArgument, NetworkError, NotFound

IFNAMSIZ = 15  # the kernel's limit on interface names, without the NUL
DUMP_RETRIES = 5  # a dump interrupted by a concurrent change is simply redone
GONE = (E.ENODEV, E.ENOENT, E.EADDRNOTAVAIL, E.ESRCH)

T = TypeVar("T")


@contextlib.contextmanager
def iproute(netns: str | os.PathLike | None = None) -> Iterator[Any]:
    """An open ``IPRoute`` in the host namespace or in the namespace file *netns*."""
    from pyroute2 import IPRoute

    if netns is None:
        with IPRoute() as ipr:
            yield ipr
        return
    path = os.fspath(netns)
    if not os.path.exists(path):
        raise NotFound(f"network namespace {path} does not exist; is the container still running?")
    # flags=0: without O_CREAT pyroute2 opens the namespace and never makes one.
    with IPRoute(netns=path, flags=0) as ipr:
        yield ipr


def check_ifname(name: str) -> str:
    if not name or len(name) > IFNAMSIZ or "/" in name or name.strip() != name:
        raise InvalidArgument(f"interface name {name!r} is invalid: use 1 to {IFNAMSIZ} characters, no '/' or spaces")
    return name


def call(op: Callable[[], T], *, what: str, device: str | None = None, netns: Any = None) -> T:
    """Run one netlink operation, translating kernel errors."""
    from pyroute2.netlink.exceptions import NetlinkDumpInterrupted, NetlinkError

    try:
        return op()
    except NetlinkDumpInterrupted:
        raise  # a NetlinkError subclass, but `dump` retries it
    except NetlinkError as err:
        raise _translate(err, what, device, netns) from err


def dump(op: Callable[[], Any], *, what: str, device: str | None = None, netns: Any = None) -> list[Any]:
    """Run a dump to completion; retry a bounded number of times if it was interrupted."""
    from pyroute2.netlink.exceptions import NetlinkDumpInterrupted

    for attempt in range(DUMP_RETRIES):
        try:
            # list() inside call(): pyroute2 yields lazily, so errors surface while iterating
            return call(lambda: list(op()), what=what, device=device, netns=netns)
        except NetlinkDumpInterrupted:
            if attempt == DUMP_RETRIES - 1:
                raise NetworkError(
                    f"{what}: the kernel's answer kept changing during {DUMP_RETRIES} reads "
                    "(heavy link churn); retry the command"
                ) from None
    raise AssertionError("unreachable")


def delete(op: Callable[[], Any], *, what: str, device: str | None = None, netns: Any = None) -> bool:
    """Run a delete; something already gone counts as done. True if this call removed it."""
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        op()
        return True
    except NetlinkError as err:
        if err.code in GONE:
            return False
        raise _translate(err, what, device, netns) from err


def _translate(err: Any, what: str, device: str | None, netns: Any) -> Exception:
    """The one mapping of netlink errno to intermodal errors; the message names device and namespace."""
    code = getattr(err, "code", None) or E.EIO
    where = f" {device}" if device else ""
    ns = f" in network namespace {os.fspath(netns)}" if netns is not None else ""
    text = f"{what}{where}{ns}: {os.strerror(code)}"
    if code == E.EEXIST:
        return AlreadyExists(f"{text}; an interface or address of that name exists already, remove it first")
    if code in (E.ENODEV, E.ENOENT):
        return NotFound(f"{text}; the interface is gone, check `ip link`")
    if code == E.EPERM:
        return NetworkError(f"{text}; networking needs root (CAP_NET_ADMIN)", code)
    if code == E.EOPNOTSUPP:
        return NetworkError(f"{text}; the kernel lacks this feature (is the bridge/veth module loaded?)", code)
    return NetworkError(f"{text}; check `ip link` and `dmesg`, then retry", code)


def link_index(ipr: Any, name: str, *, netns: Any = None) -> int | None:
    found = call(lambda: ipr.link_lookup(ifname=name), what="look up", device=name, netns=netns)
    return found[0] if found else None


def link_names(ipr: Any, *, netns: Any = None) -> list[str]:
    return [link.get("ifname") for link in dump(lambda: ipr.link("dump"), what="list links", netns=netns)]
