"""The part of ctypes the runtime uses (syscalls, capabilities, seccomp), defined on `_ctypes`.

`_ctypes` is the C half of ctypes; the `ctypes` package over it defines some 40
types, a callback and imports struct, types and ctypes._endian: ~1.5 ms of every
container start, in the monitor's launcher. The definitions below are ctypes'
own (same `_type_` codes, same flags), so calls convert arguments and results
exactly as with ctypes. Types are distinct from ctypes' (`cabi.c_int` is not
`ctypes.c_int`); do not mix them in one argtypes list or structure.
"""

from __future__ import annotations

import _ctypes

byref = _ctypes.byref
addressof = _ctypes.addressof
sizeof = _ctypes.sizeof
get_errno = _ctypes.get_errno
POINTER = _ctypes.POINTER
Structure = _ctypes.Structure


class c_char(_ctypes._SimpleCData):
    _type_ = "c"


class c_char_p(_ctypes._SimpleCData):
    _type_ = "z"


class c_void_p(_ctypes._SimpleCData):
    _type_ = "P"


class c_int(_ctypes._SimpleCData):
    _type_ = "i"


class c_uint(_ctypes._SimpleCData):
    _type_ = "I"


class c_long(_ctypes._SimpleCData):
    _type_ = "l"


class c_ulong(_ctypes._SimpleCData):
    _type_ = "L"


class c_ushort(_ctypes._SimpleCData):
    _type_ = "H"


class _c_ulonglong(_ctypes._SimpleCData):
    _type_ = "Q"


# The aliases as ctypes makes them: the first type of that size.
c_uint32 = c_uint
c_size_t = c_ulong
c_uint64 = c_ulong if sizeof(c_ulong) == 8 else _c_ulonglong


class _CFunction(_ctypes.CFuncPtr):
    """A C function as `ctypes.CDLL(..., use_errno=True)` gives it: cdecl, int result by default."""

    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = c_int


class CDLL:
    """`ctypes.CDLL(name, use_errno=True)`: a shared library (None: the program and its libraries,
    libc among them); ``lib.name`` is a function with ctypes' conversions and errno saved."""

    def __init__(self, name: str | None) -> None:
        self._name = name
        self._handle = _ctypes.dlopen(name, 0)  # ctypes' default mode: RTLD_LOCAL, and _ctypes adds RTLD_NOW

    def __getattr__(self, name: str) -> _CFunction:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        func = _CFunction((name, self))
        func.__name__ = name
        setattr(self, name, func)  # cached, like ctypes: argtypes/restype set on it stay
        return func


def string_buffer(data: bytes) -> _ctypes.Array:
    """A writable C copy of *data* (`ctypes.create_string_buffer(data, len(data))`)."""
    return (c_char * len(data)).from_buffer_copy(data)
