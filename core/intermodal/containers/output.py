"""A container's output for its readers: `logs` (with --follow) and `attach`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from intermodal.containers import status as st
from intermodal.errors import IncorrectState

if TYPE_CHECKING:
    from intermodal.containers.manager import ContainerManager

ATTACH_POLL = 0.05  # seconds between looks at the log and the state while attached


def logs(manager: ContainerManager, name: str, *, follow: bool = False, tail: int | None = None,
         since_ns: int | None = None, until_ns: int | None = None) -> Iterator[dict[str, Any]]:
    """Log records (`log`, `stream`, `time`), oldest first; with *follow*, until the container stops."""
    from intermodal.containers.logs import read_records, select

    cid = manager.store.resolve(name)
    directory = str(manager.store.dir(cid))
    records = select(read_records(directory), tail=tail, since_ns=since_ns, until_ns=until_ns)
    yield from records
    if follow:
        yield from _follow(manager, cid, directory, len(read_records(directory)))


def attach(manager: ContainerManager, name: str) -> Iterator[dict[str, Any]]:
    """`docker attach`, output only: the records the container writes from now on, until it stops.

    Raises ContainerNotFound, IncorrectState (not running). Its input is not attached: the monitor
    holds a container's stdin only for the `run -i` that started it.
    """
    from intermodal.containers.logs import Follower

    cid = manager.store.resolve(name)
    state = st.effective(manager.store.read_state(cid))
    if state.get("Status") not in ("running", "paused"):
        raise IncorrectState(f"container {manager.store.read_record(cid)['Name']}", state.get("Status", "created"),
                             "running")
    follower = Follower(str(manager.store.dir(cid)))
    try:
        while True:
            state = manager.store.read_state(cid)
            done = not state or st.effective(state).get("Status") not in ("running", "paused")
            yield from follower.read()
            if done:
                return
            time.sleep(ATTACH_POLL)
    finally:
        follower.close()


def _follow(manager: ContainerManager, cid: str, directory: str, seen: int) -> Iterator[dict[str, Any]]:
    from intermodal.containers.logs import read_records

    while True:
        state = manager.store.read_state(cid)
        done = not state or st.effective(state).get("Status") not in st.LIVE
        records = read_records(directory)
        if len(records) < seen:
            seen = 0  # rotated
        yield from records[seen:]
        seen = len(records)
        if done:
            return
        time.sleep(0.1)
