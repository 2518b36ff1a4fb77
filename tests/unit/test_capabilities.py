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


def test_warnings_name_what_the_kernel_will_not_grant():
    assert caps.warnings(None) == [] and caps.warnings({}) == []
    ok = {k: ["CAP_KILL"] for k in caps.SETS}
    assert caps.warnings(ok, limit=40) == []
    # `runc spec`'s default: ambient without inheritable.
    runc = {k: ["CAP_AUDIT_WRITE", "CAP_KILL"] for k in ("bounding", "effective", "permitted", "ambient")}
    [text] = caps.warnings(runc, limit=40)
    assert text.startswith("process.capabilities.ambient: can't raise CAP_KILL (not in inheritable), "
                           "CAP_AUDIT_WRITE (not in inheritable)")
    [text] = caps.warnings({"inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]}, limit=40)
    assert "CAP_KILL (not in permitted)" in text
    [text] = caps.warnings({"ambient": ["CAP_KILL"]}, limit=40)
    assert "CAP_KILL (not in permitted nor inheritable)" in text
    # Known to us, unknown to an older kernel: left out of every set, said once.
    new = {k: ["CAP_BPF", "CAP_CHOWN"] for k in caps.SETS}
    [text] = caps.warnings(new, limit=37)
    assert "CAP_BPF unknown to the running kernel" in text and "CAP_AUDIT_READ" in text
