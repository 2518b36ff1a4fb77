"""rtnl.py's message encoding, checked against the bytes the kernel's uapi layout prescribes."""

from __future__ import annotations

import struct

import pytest

from intermodal.network import rtnl


@pytest.mark.parametrize(("kind", "value", "expected"), [
    (3, b"eth0\0", struct.pack("=HH", 9, 3) + b"eth0\0" + b"\0" * 3),  # padded to 4 bytes
    (4, struct.pack("=I", 1500), struct.pack("=HHI", 8, 4, 1500)),  # already aligned
    (1, b"", struct.pack("=HH", 4, 1)),
])
def test_attributes_are_length_prefixed_and_padded(kind, value, expected):
    assert rtnl.attr(kind, value) == expected


def test_nested_attributes_carry_the_nested_flag_and_their_children():
    inner = rtnl.attr(1, b"veth")
    outer = rtnl.nested(rtnl.IFLA_LINKINFO, inner)
    length, kind = struct.unpack_from("=HH", outer)
    assert kind == rtnl.IFLA_LINKINFO | rtnl.NLA_F_NESTED and length == 4 + len(inner)
    assert rtnl.parse_attrs(outer) == {rtnl.IFLA_LINKINFO: inner}


def test_parse_attrs_reads_back_what_attr_wrote():
    body = rtnl.attr(rtnl.IFLA_IFNAME, b"imv0\0") + rtnl.attr(rtnl.IFLA_MTU, struct.pack("=I", 9000))
    parsed = rtnl.parse_attrs(body)
    assert parsed[rtnl.IFLA_IFNAME] == b"imv0\0"
    assert struct.unpack("=I", parsed[rtnl.IFLA_MTU]) == (9000,)


def test_parse_attrs_stops_at_a_truncated_attribute():
    assert rtnl.parse_attrs(struct.pack("=HH", 2, 1) + b"xxxx") == {}


def test_errors_carry_the_errno_as_code_for_the_one_translation_point():
    import errno

    from intermodal.errors import AlreadyExists
    from intermodal.network import netlink

    err = rtnl.RtnlError(errno.EEXIST, "File exists")
    assert err.code == errno.EEXIST
    assert isinstance(netlink._translate(err, "create veth", "imv0", None), AlreadyExists)
