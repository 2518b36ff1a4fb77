"""The capability table and the pure parts of applying OCI process.capabilities."""

from __future__ import annotations

import pytest

from intermodal.errors import InvalidSpec
from intermodal.runtime import capabilities as caps


@pytest.mark.parametrize(("name", "number"), [
    ("CAP_CHOWN", 0), ("CAP_NET_BIND_SERVICE", 10), ("CAP_NET_RAW", 13), ("CAP_SYS_ADMIN", 21),
    ("CAP_MKNOD", 27), ("CAP_AUDIT_WRITE", 29), ("CAP_SETFCAP", 31), ("CAP_SYSLOG", 34),
    ("CAP_PERFMON", 38), ("CAP_BPF", 39), ("CAP_CHECKPOINT_RESTORE", 40),
])
def test_numbers_match_linux_capability_h(name, number):
    assert caps.number(name) == number
    assert caps.names()[number] == name


@pytest.mark.parametrize("bad", ["SYS_ADMIN", "CAP_SYS_ADMINN", "cap_sys_admin", ""])
def test_unknown_names_are_invalid_spec(bad):
    with pytest.raises(InvalidSpec, match="unknown capability"):
        caps.number(bad)


def test_validate_names_the_json_path():
    with pytest.raises(InvalidSpec, match=r"process\.capabilities\.effective\[1\]"):
        caps.validate({"effective": ["CAP_KILL", "CAP_NOPE"]})
    with pytest.raises(InvalidSpec, match=r"process\.capabilities\.bogus"):
        caps.validate({"bogus": []})
    caps.validate(None)
    caps.validate({"bounding": None, "ambient": []})


def test_masks():
    assert caps.to_mask(["CAP_CHOWN", "CAP_KILL"], limit=40) == 0b100001
    assert caps.to_mask(None, limit=40) == 0
    # Known to us but above the running kernel's cap_last_cap: left out, as runc does.
    assert caps.to_mask(["CAP_CHECKPOINT_RESTORE", "CAP_CHOWN"], limit=37) == 1
    assert caps.mask_names(0b100001) == ["CAP_CHOWN", "CAP_KILL"]
    assert caps.mask_names(1 << 45) == ["CAP_45"]


def test_none_changes_nothing():
    before = caps.read_status()
    caps.apply_bounding(None)
    caps.apply(None)
    assert caps.read_status() == before


def test_read_status_has_the_five_sets():
    assert set(caps.read_status()) == {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}
