"""Small filesystem helpers: atomic writes and safe names."""

from __future__ import annotations

import os

from intermodal.errors import InvalidArgument

TYPE_CHECKING = False  # not `typing` (~3 ms): the monitor's launcher imports this for every start
if TYPE_CHECKING:
    from pathlib import Path  # only here: ~3 ms to import
    from typing import Any

_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_CHARS = _ALNUM | frozenset("_.-")  # [a-zA-Z0-9][a-zA-Z0-9_.-]*, checked without `re` (`imod run`'s path)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace *path* with *data* so readers see the old or the new file, never half of one."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with _ignore_missing():
            os.unlink(tmp)
        raise


def _create_temp(path: Path) -> tuple[int, str]:
    """A new ``.<name>.<random>.tmp`` beside *path*, as tempfile.mkstemp makes it (0600, exclusive, no
    symlink followed), without importing tempfile (and random, shutil): ~4 ms of every `imod`."""
    head, name = os.path.split(os.path.normpath(path))
    for _ in range(100):
        tmp = os.path.join(head, f".{name}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}; remove the .{name}.*.tmp files there")


def atomic_write_json(path: Path, value: Any, mode: int = 0o644) -> None:
    from intermodal import cjson  # json's C half: `json` imports re and enum (~1 ms of every `imod`)

    atomic_write(path, cjson.dumps(value, indent=1, sort_keys=True).encode(), mode)


def read_json(path: Path, default: Any = None) -> Any:
    from intermodal import cjson

    try:
        with open(path, "rb") as f:
            return cjson.loads(f.read())
    except FileNotFoundError:
        return default


def check_name(name: str, what: str) -> str:
    """Refuse names that could escape a directory (`../x`, `a/b`) or confuse tools."""
    if not name or name[0] not in _ALNUM or not _NAME_CHARS.issuperset(name) or len(name) > 253:
        raise InvalidArgument(
            f"invalid {what} name {name!r}: use letters, digits, '_', '.' and '-', "
            "starting with a letter or digit"
        )
    return name


def remove_tree(path: Path) -> None:
    """Remove a directory tree; a missing one is already removed.

    As ``shutil.rmtree`` removes it on Linux (through directory descriptors, never following a
    symlink), without importing shutil, which brings zlib, bz2 and lzma: ~2 ms of `imod run --rm`.
    Any error but a missing file is raised.
    """
    try:
        fd = os.open(path, _DIR_FLAGS)
    except FileNotFoundError:
        return
    except OSError:
        if os.path.islink(path):
            raise OSError("Cannot call rmtree on a symbolic link") from None  # shutil's error
        raise
    try:
        _clear(fd)
    finally:
        os.close(fd)
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _clear(fd: int) -> None:
    """Remove everything in the directory open as *fd*, depth first."""
    with os.scandir(fd) as entries:
        names = [(entry.name, _is_dir(entry)) for entry in entries]
    for name, is_dir in names:
        try:
            if is_dir:
                sub = os.open(name, _DIR_FLAGS, dir_fd=fd)  # O_NOFOLLOW: a symlink swapped in fails, ELOOP
                try:
                    _clear(sub)
                finally:
                    os.close(sub)
                os.rmdir(name, dir_fd=fd)
            else:
                os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            pass


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except FileNotFoundError:
        return False


class _ignore_missing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        return exc_type is not None and issubclass(exc_type, FileNotFoundError)
