"""intermodal.cjson gives what json gives: the same values, the same text, the same errors."""

from __future__ import annotations

import json
import math

import pytest

from intermodal import cjson

VALUES = [
    {},
    [],
    "",
    "text with \"quotes\", a \\ and é ☃ \U0001f600 \n\t\x00",
    0, -1, 2**70, 1.5, -0.0, 1e300, math.inf, -math.inf, True, False, None,
    [1, [2, [3, []]], {}, {"a": {}}],
    (1, "two", (3,)),
    {"b": 1, "a": [1, 2, {"z": None, "y": True}], "c": {"é": "ü"}, "d": 2.25},
    {"id": "c", "pid": 12, "annotations": {"k": "v"}, "cgroup_paths": {}, "namespaces": ["pid", "mount"]},
]


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("indent", [None, 1, 4])
@pytest.mark.parametrize("sort_keys", [False, True])
def test_dumps_writes_what_json_writes(value, indent, sort_keys):
    assert cjson.dumps(value, indent=indent, sort_keys=sort_keys) == json.dumps(value, indent=indent,
                                                                                 sort_keys=sort_keys)


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("separators", [(",", ":"), (";", "=")])
def test_dumps_with_separators_writes_what_json_writes(value, indent, separators):
    assert cjson.dumps(value, indent=indent, separators=separators) == json.dumps(value, indent=indent,
                                                                                    separators=separators)


@pytest.mark.parametrize("value", VALUES)
def test_loads_reads_what_json_reads(value):
    for text in (json.dumps(value), json.dumps(value, indent=2), f" \n\t{json.dumps(value)}\r\n "):
        for data in (text, text.encode()):
            got, want = cjson.loads(data), json.loads(data)
            assert got == want and type(got) is type(want)


def test_loads_reads_the_special_numbers_as_json_does():
    got = cjson.loads('[NaN, Infinity, -Infinity, 1E400, 12345678901234567890]')
    assert math.isnan(got[0]) and got[1:4] == [math.inf, -math.inf, math.inf] and got[4] == 12345678901234567890


@pytest.mark.parametrize("data", [
    "", "   ", "{", '{"a": 1} x', '{"a": 1}{}', "[1,]", "{'a': 1}", "\ufeff{}", '"\x01"', "nul",
    b"\xff\xfe{\x00}\x00", b"\xef\xbb\xbf{}", b"\x80", "\x0b{}",
])
def test_bad_or_unusual_input_behaves_as_in_json(data):
    try:
        want = json.loads(data)
    except ValueError as exc:
        with pytest.raises(type(exc)) as got:
            cjson.loads(data)
        assert str(got.value) == str(exc)
    else:
        assert cjson.loads(data) == want


def test_other_encodings_are_read_as_json_reads_them():
    value = {"a": ["b", 1]}
    for encoding in ("utf-16", "utf-16-le", "utf-32-be", "utf-8-sig"):
        assert cjson.loads(json.dumps(value).encode(encoding)) == value


@pytest.mark.parametrize("indent", [None, 1])
def test_what_json_cannot_write_fails_as_in_json(indent):
    cyclic: list = []
    cyclic.append(cyclic)
    for value in ({"a": object()}, [1, {2}], cyclic):
        with pytest.raises((TypeError, ValueError)) as want:
            json.dumps(value, indent=indent)
        with pytest.raises(type(want.value)) as got:
            cjson.dumps(value, indent=indent)
        assert str(got.value) == str(want.value)


@pytest.mark.parametrize("indent", [None, 1])
def test_keys_other_than_strings_are_written_as_json_writes_them(indent):
    value = {1: "a", 2.5: [True], None: {}, False: 0}
    assert cjson.dumps(value, indent=indent) == json.dumps(value, indent=indent)
