"""runtime.cabi defines what ctypes defines, on `_ctypes`: same type codes and sizes, same calls."""

from __future__ import annotations

import ctypes
import errno
import os

import pytest

from intermodal.runtime import cabi, capabilities, seccomp

TYPES = ["c_char", "c_char_p", "c_void_p", "c_int", "c_uint", "c_long", "c_ulong", "c_ushort", "c_uint32",
         "c_uint64", "c_size_t"]


@pytest.mark.parametrize("name", TYPES)
def test_types_are_ctypes_own(name):
    ours, theirs = getattr(cabi, name), getattr(ctypes, name)
    assert (ours._type_, cabi.sizeof(ours)) == (theirs._type_, ctypes.sizeof(theirs))


def test_structures_have_ctypes_layout():
    class ArgCmp(ctypes.Structure):
        _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                    ("datum_b", ctypes.c_uint64)]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    assert cabi.sizeof(seccomp._ArgCmp) == ctypes.sizeof(ArgCmp)
    assert cabi.sizeof(seccomp._SockFprog) == ctypes.sizeof(SockFprog)
    assert cabi.sizeof(capabilities._Data * 2) == 24 and cabi.sizeof(capabilities._Header) == 8
    cmp = seccomp._ArgCmp(1, 4, 2**64 - 1, 7)
    assert bytes(cmp) == bytes(ArgCmp(1, 4, 2**64 - 1, 7))


def test_calls_convert_and_keep_errno_as_ctypes():
    libc = cabi.CDLL(None)
    assert libc.getpid() == os.getpid()
    assert libc.close(-1) == -1 and cabi.get_errno() == errno.EBADF
    assert libc.getpid is libc.getpid  # one function object per name, keeping argtypes/restype
    libc.strlen.argtypes = [cabi.c_char_p]
    libc.strlen.restype = cabi.c_size_t
    assert libc.strlen(b"four") == 4
    with pytest.raises(AttributeError):
        _ = cabi.CDLL(None).no_such_function_in_libc


def test_a_missing_library_raises_oserror_as_ctypes():
    with pytest.raises(OSError):
        cabi.CDLL("libdoes-not-exist.so.9")


def test_string_buffer_copies_every_byte():
    data = b"a\x00b\xff"
    buf = cabi.string_buffer(data)
    assert bytes(buf) == data and cabi.sizeof(buf) == len(data)
    assert ctypes.string_at(cabi.addressof(buf), len(data)) == data
