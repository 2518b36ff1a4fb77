"""`imod`'s imports of the standard library, minus what it never uses.

pathlib imports urllib.parse for one method, ``Path.as_uri`` (and
urllib.parse imports ipaddress: ~4 ms), and re and fnmatch for globbing
and ``match`` (re imports enum: ~3 ms), none of which `imod run` calls;
with its arguments parsed without argparse (cli/quick_parser.py), nothing
else on its path needs re. `lean_pathlib` imports pathlib with stand-ins
for those modules, then takes the stand-ins out of sys.modules again:
anything importing them afterwards gets the real ones, and pathlib's own
references to them import the real module on first use, so ``as_uri``,
``glob`` and ``match`` work as ever.

Only for the `imod` process, before anything imports pathlib: the stand-ins
are in sys.modules for the duration of one import, in a single thread.
"""

from __future__ import annotations

import sys

_Module = type(sys)


class _Deferred(_Module):
    """Stands in for a module pathlib holds a reference to: the real module is imported on first use."""

    def __getattr__(self, name: str) -> object:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]  # still inside pathlib's import: the real one, now
        __import__(self.__name__)
        return getattr(sys.modules[self.__name__], name)


def lean_pathlib() -> None:
    if any(name in sys.modules for name in ("pathlib", "urllib.parse", "re", "fnmatch")):
        return
    urllib_parse = _Module("urllib.parse")
    urllib_parse.quote_from_bytes = _quote_from_bytes  # the one name pathlib takes from it
    stand_ins = {"urllib.parse": urllib_parse, "re": _Deferred("re"), "fnmatch": _Deferred("fnmatch")}
    sys.modules.update(stand_ins)
    try:
        import pathlib  # noqa: F401
    finally:
        for name, stand_in in stand_ins.items():
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]
        urllib = sys.modules.get("urllib")
        if urllib is not None and getattr(urllib, "parse", None) is urllib_parse:
            del urllib.parse


def _quote_from_bytes(*args, **kwargs):
    from urllib.parse import quote_from_bytes

    return quote_from_bytes(*args, **kwargs)
