"""The monitor's arguments and the ready pipe's deadline (pure logic, real pipes)."""

from __future__ import annotations

import os

import pytest

from intermodal.containers.launch import _read_ready
from intermodal.containers.monitor import split_id

ID = "0123456789abcdef" * 4


def test_the_id_is_taken_out_of_the_descriptor_arguments():
    assert split_id(["--ready", "4", "--id", ID, "--go", "5"]) == (["--ready", "4", "--go", "5"], ID)
    assert split_id(["--ready", "4"]) == (["--ready", "4"], None)


@pytest.mark.parametrize("bad", ["../../etc", ID.upper(), ID[:-1], ID + "0", "", "a/" + ID[2:]])
def test_an_id_that_is_no_engine_id_stages_nothing(bad):
    assert split_id(["--id", bad, "--go", "5"]) == (["--go", "5"], None)


def test_the_ready_report_is_read_to_its_end():
    r, w = os.pipe()
    os.write(w, b'{"ok": true, "pid": 7}\n')
    os.close(w)
    try:
        assert _read_ready(r, 5.0) == {"ok": True, "pid": 7}
    finally:
        os.close(r)


def test_a_closed_pipe_without_report_is_none():
    r, w = os.pipe()
    os.close(w)
    try:
        assert _read_ready(r, 5.0) is None
    finally:
        os.close(r)


def test_a_pipe_still_open_at_the_deadline_times_out():
    r, w = os.pipe()
    os.write(w, b'{"ok": true')  # a part, and the writer never closes
    try:
        with pytest.raises(TimeoutError):
            _read_ready(r, 0.05)
    finally:
        os.close(r)
        os.close(w)


def test_a_launcher_that_fails_answers_with_the_error():
    from intermodal.containers.monitor_launcher import _report
    from intermodal.containers.monitor_sys import loads

    r, w = os.pipe()
    try:
        _report(w, ValueError("boom"))
        os.close(w)
        w = -1
        assert loads(os.read(r, 4096).decode()) == {"error": "the runtime's launcher failed: ValueError: boom"}
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_descriptors_pack_as_the_c_ints_scm_rights_carries():
    import array

    from intermodal.runtime.syscalls import pack_fds, unpack_fds

    fds = [0, 3, 255, 70000, -1]
    assert pack_fds(fds) == array.array("i", fds).tobytes()
    assert unpack_fds(pack_fds(fds) + b"\x01") == fds  # a truncated trailing int is dropped
