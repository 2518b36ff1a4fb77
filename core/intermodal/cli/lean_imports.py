"""`imod`'s imports of the standard library, minus what it never uses.

pathlib imports urllib.parse for one method, ``Path.as_uri``, and
urllib.parse imports ipaddress: ~4 ms of every `imod` (a third of its
imports beyond the interpreter's own), for a method the engine never calls.
`pathlib_without_urllib` imports pathlib with a stand-in for urllib.parse
that imports the real module on its first call, and then takes the stand-in
away again: anything importing urllib.parse afterwards gets the real one,
and ``as_uri`` works as ever.

Only for the `imod` process, before anything imports pathlib: the stand-in
is in sys.modules for the duration of one import, in a single thread.
"""

from __future__ import annotations

import sys


def pathlib_without_urllib() -> None:
    if "pathlib" in sys.modules or "urllib.parse" in sys.modules:
        return
    stand_in = type(sys)("urllib.parse")
    stand_in.quote_from_bytes = _quote_from_bytes  # the one name pathlib takes from it
    sys.modules["urllib.parse"] = stand_in
    try:
        import pathlib  # noqa: F401
    finally:
        if sys.modules.get("urllib.parse") is stand_in:
            del sys.modules["urllib.parse"]
        urllib = sys.modules.get("urllib")
        if urllib is not None and getattr(urllib, "parse", None) is stand_in:
            del urllib.parse


def _quote_from_bytes(*args, **kwargs):
    from urllib.parse import quote_from_bytes

    return quote_from_bytes(*args, **kwargs)
