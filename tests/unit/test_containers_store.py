"""The container store (names, ids, prefixes, stale reservations) and the json-file log, on a temp dir."""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from intermodal.containers import logs
from intermodal.containers.store import RECORD, ContainerStore, new_id
from intermodal.errors import AlreadyExists, ContainerNotFound, InvalidArgument
from intermodal.paths import EnginePaths


@pytest.fixture
def store(tmp_path) -> ContainerStore:
    return ContainerStore(EnginePaths.resolve(tmp_path / "root"))


def _add(store: ContainerStore, name: str, cid: str | None = None) -> str:
    cid = cid or new_id()
    with store.lock(cid):
        store.reserve_name(name, cid)
        store.dir(cid).mkdir(parents=True)
        store.write_record(cid, {"Id": cid, "Name": name})
    return cid


def test_ids_are_64_hex_and_distinct():
    ids = {new_id() for _ in range(100)}
    assert len(ids) == 100 and all(len(i) == 64 and int(i, 16) >= 0 for i in ids)


def test_resolve_by_id_name_and_prefix(store):
    a = _add(store, "alpha", "ab" + "0" * 62)
    b = _add(store, "beta", "ac" + "0" * 62)
    assert store.resolve(a) == a
    assert store.resolve("alpha") == a and store.resolve("/beta") == b
    assert store.resolve("ab") == a
    with pytest.raises(InvalidArgument, match="matches 2 containers"):
        store.resolve("a")
    with pytest.raises(ContainerNotFound, match="no such container: gamma"):
        store.resolve("gamma")


def test_name_taken_names_the_holder(store):
    a = _add(store, "web")
    with pytest.raises(AlreadyExists, match=a[:12]):
        _add(store, "web")


def test_stale_reservation_of_a_crashed_create_is_reclaimed(store):
    crashed = new_id()
    store.reserve_name("web", crashed)  # no record, nobody holds its lock: a crash mid-create
    _add(store, "web")
    assert store.names()["web"] != crashed


def test_reservation_of_a_create_in_progress_is_respected(store):
    working = new_id()
    with store.lock(working):  # its creator is still at work
        store.reserve_name("web", working)
        with pytest.raises(AlreadyExists):
            store.reserve_name("web", new_id())


def _reserve(args):
    root, name = args
    s = ContainerStore(EnginePaths.resolve(root))
    try:
        _add(s, name)
        return True
    except AlreadyExists:
        return False


def test_parallel_reservations_of_one_name(tmp_path):
    root = str(tmp_path / "root")
    with multiprocessing.get_context("fork").Pool(8) as pool:
        results = pool.map(_reserve, [(root, "same")] * 16)
    assert results.count(True) == 1
    assert len(ContainerStore(EnginePaths.resolve(root)).ids()) == 1


def test_rename_frees_the_old_name(store):
    a = _add(store, "old")
    store.rename(a, "old", "new")
    assert store.names() == {"new": a}
    _add(store, "old")


def test_state_updates_are_whole_files(store):
    a = _add(store, "s")
    store.write_state(a, {"Status": "created"})
    assert store.update_state(a, Status="running", Pid=5) == {"Status": "running", "Pid": 5}
    assert json.loads((store.dir(a) / "state.json").read_text())["Pid"] == 5
    assert not [p for p in os.listdir(store.dir(a)) if p.endswith(".tmp")]


# -- json-file logs ---------------------------------------------------------------------


def test_log_records_lines_streams_and_partial_lines(tmp_path):
    w = logs.LogWriter(str(tmp_path))
    w.feed("stdout", b"hel")
    w.feed("stdout", b"lo\nwor")
    w.feed("stderr", b"oops\n")
    w.close()
    records = logs.read_records(str(tmp_path))
    assert [(r["stream"], r["log"]) for r in records] == [("stdout", "hello\n"), ("stderr", "oops\n"),
                                                          ("stdout", "wor")]
    assert all(r["time"].endswith("Z") and len(r["time"]) == 30 for r in records)


def test_log_long_lines_are_split(tmp_path):
    w = logs.LogWriter(str(tmp_path))
    w.feed("stdout", b"x" * (logs.MAX_RECORD * 2 + 10) + b"\n")
    w.close()
    assert [len(r["log"]) for r in logs.read_records(str(tmp_path))] == [logs.MAX_RECORD, logs.MAX_RECORD, 11]


def test_log_rotation_keeps_max_file(tmp_path):
    w = logs.LogWriter(str(tmp_path), max_size=500, max_file=3)
    for i in range(100):
        w.feed("stdout", f"line {i}\n".encode())
    w.close()
    names = sorted(os.listdir(tmp_path))
    assert names == ["container.log", "container.log.1", "container.log.2"]
    assert all(os.path.getsize(tmp_path / n) <= 500 for n in names)
    lines = [r["log"] for r in logs.read_records(str(tmp_path))]
    assert lines[-1] == "line 99\n" and lines == sorted(lines, key=lambda s: int(s.split()[1]))


def test_log_select_tail_and_since():
    records = [{"log": f"{i}\n", "stream": "stdout", "time": f"2024-01-01T00:00:0{i}.000000000Z"} for i in range(5)]
    assert [r["log"] for r in logs.select(records, tail=2)] == ["3\n", "4\n"]
    assert logs.select(records, tail=0) == []
    since = logs.parse_time("2024-01-01T00:00:03Z")
    assert [r["log"] for r in logs.select(records, since_ns=since)] == ["3\n", "4\n"]
    assert logs.parse_time("1704067200") == logs.parse_time("2024-01-01T00:00:00Z")


def test_log_times_keep_nanoseconds_and_offsets():
    assert logs.parse_time("2024-01-01T00:00:00.000000001Z") == 1704067200_000000001
    assert logs.parse_time("2024-01-01T02:00:00.5+02:00") == 1704067200_500000000
    assert logs.parse_time("1704067200.25") == 1704067200_250000000  # exact, not through a float
    for bad in ("yesterday", "2024-01-01T00:00:00.Z", ""):
        with pytest.raises(InvalidArgument):
            logs.parse_time(bad)


def test_follower_reads_only_new_records_across_rotations(tmp_path):
    w = logs.LogWriter(str(tmp_path), max_size=300, max_file=5)  # enough kept for the reads below
    w.feed("stdout", b"old\n")
    w.flush()
    follower = logs.Follower(str(tmp_path))
    seen = []
    for i in range(40):  # several rotations, read now and then
        w.feed("stderr" if i % 2 else "stdout", f"line {i}\n".encode())
        w.flush()
        if i % 7 == 0:
            seen += follower.read()
    w.close()
    seen += follower.read()
    follower.close()
    assert [r["log"] for r in seen] == [f"line {i}\n" for i in range(40)]
    assert [r["stream"] for r in seen[:2]] == ["stdout", "stderr"]


def test_locking_a_container_removed_meanwhile_is_not_found_and_leaves_no_lock_file(store):
    cid = _add(store, "gone")
    (store.dir(cid) / RECORD).unlink()
    store.lock_path(cid).unlink()  # what a remover deletes last
    with pytest.raises(ContainerNotFound, match="removed meanwhile"), store.locked_existing(cid):
        pass
    assert not store.lock_path(cid).exists()
