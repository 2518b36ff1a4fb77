"""`imod cp`: files between a container and the host, in both directions.

Container paths are resolved the way the container sees them: through its
mounts (volumes, bind mounts, /etc/hosts and friends, else the root
filesystem), and every symlink is followed *inside* the container's root
(an absolute link target starts at the container's `/`, `..` stops at it),
so a link in an image can never send a copy to or from the host's files.
Writes never follow a link either: an entry in the way is replaced.

The container's mounts are read from its record; files of a running
container can change while they are copied, as with `docker cp`.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from intermodal.errors import InvalidArgument, NotFound

MAX_LINKS = 40  # as the kernel's path walk (ELOOP)


class ContainerFS:
    """The container's file tree as host paths: its rootfs with its mounts on top."""

    def __init__(self, rootfs: str, mounts: list[tuple[str, str]]) -> None:
        self.rootfs = rootfs
        # Longest target first, so /data/sub wins over /data.
        self.mounts = sorted(((t.rstrip("/") or "/", s) for t, s in mounts), key=lambda m: len(m[0]), reverse=True)

    @classmethod
    def of(cls, record: dict[str, Any], directory: Path) -> ContainerFS:
        mounts = [(m["Target"], m["HostSource"]) for m in record.get("Mounts", ()) if m.get("HostSource")]
        mounts += [("/etc/hosts", str(directory / "hosts")), ("/etc/hostname", str(directory / "hostname")),
                   ("/etc/resolv.conf", str(directory / "resolv.conf"))]
        return cls(record["Rootfs"], mounts)

    def host(self, path: str) -> str:
        """The host path of a *resolved* container path (no links in it)."""
        for target, source in self.mounts:
            if path == target or path.startswith(target + "/"):
                return source + path[len(target):]
        return self.rootfs + ("" if path == "/" else path)

    def resolve(self, path: str, *, follow_last: bool = True) -> str:
        """*path* with every symlink followed inside the container; the result is a container path."""
        parts = [p for p in PurePosixPath("/" + path).parts[1:] if p not in ("", ".")]
        done: list[str] = []
        links = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            current = "/" + "/".join([*done, part])
            if not parts and not follow_last:
                done.append(part)
                break
            try:
                st = os.lstat(self.host(current))
            except FileNotFoundError:
                done.append(part)
                continue
            if not stat.S_ISLNK(st.st_mode):
                done.append(part)
                continue
            links += 1
            if links > MAX_LINKS:
                raise InvalidArgument(f"too many symbolic links while resolving {path} in the container")
            target = os.readlink(self.host(current))
            if target.startswith("/"):
                done = []
            parts = [p for p in PurePosixPath(target).parts if p not in ("", ".", "/")] + parts
        return "/" + "/".join(done)


# -- from the container ---------------------------------------------------------------


def copy_out(fs: ContainerFS, src: str, dest: str, out: BinaryIO | None = None) -> None:
    """Container *src* to host *dest* (a path, or '-' for a tar stream on *out*)."""
    contents_only = src.rstrip("/").endswith("/.") or src == "."
    resolved = fs.resolve(src, follow_last=False)
    host_src = fs.host(resolved)
    if not os.path.lexists(host_src):
        raise NotFound(f"no such file or directory in the container: {src}")
    if dest == "-":
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            tar.add(host_src, arcname=os.path.basename(resolved) or ".", recursive=True)
        return
    is_dir = os.path.isdir(host_src) and not os.path.islink(host_src)
    if is_dir and contents_only:
        os.makedirs(dest, exist_ok=True)
        _cp([f"{host_src}/.", dest])
    elif os.path.isdir(dest):  # into it, under the source's name
        _cp([host_src, os.path.join(dest, os.path.basename(resolved))])
    else:
        if dest.endswith("/"):
            raise InvalidArgument(f"destination directory {dest} does not exist; create it first")
        _cp([host_src, dest])


def _cp(args: list[str]) -> None:
    """`cp -a` (owners, modes, times, links as links); the host side is the user's own choice."""
    proc = subprocess.run(["cp", "-a", "--", *args], capture_output=True)
    if proc.returncode != 0:
        raise InvalidArgument(f"copy failed: {proc.stderr.decode(errors='replace').strip()}")


# -- into the container -------------------------------------------------------------------


def copy_in(fs: ContainerFS, src: str, dest: str, source: BinaryIO | None = None) -> None:
    """Host *src* (a path, or '-' for a tar stream from *source*) to container *dest*."""
    target = fs.resolve(dest)
    host_target = fs.host(target)
    target_is_dir = os.path.isdir(host_target)
    if src == "-":
        if not target_is_dir:
            raise InvalidArgument(f"destination {dest} must be an existing directory in the container for a tar")
        with tarfile.open(fileobj=source, mode="r|*") as tar:
            _write_entries(fs, target, _tar_entries(tar))
        return
    if not os.path.lexists(src):
        raise NotFound(f"no such file or directory on the host: {src}")
    contents_only = src.rstrip("/").endswith("/.")
    src_is_dir = os.path.isdir(src) and not os.path.islink(src)
    if src_is_dir and (contents_only or not os.path.lexists(host_target)):
        base, name = target, None  # the directory becomes (or fills) dest
    elif target_is_dir:
        base, name = target, os.path.basename(os.path.normpath(src))
    else:
        if dest.endswith("/"):
            raise InvalidArgument(f"destination directory {dest} does not exist in the container; create it first")
        base, name = str(PurePosixPath(target).parent), PurePosixPath(target).name
    must_exist = str(PurePosixPath(base).parent) if name is None and not os.path.lexists(host_target) else base
    if not os.path.isdir(fs.host(fs.resolve(must_exist))):
        raise NotFound(f"the directory {must_exist} does not exist in the container; create it first")
    _write_entries(fs, base, _host_entries(src, name))


Entry = tuple[str, os.stat_result | tarfile.TarInfo, Any]


def _host_entries(src: str, name: str | None) -> Iterator[Entry]:
    """(relative path, metadata, opener/link target) for *src* and, for a directory, everything below."""
    top = name or "."
    st = os.lstat(src)
    yield top, st, _opener(src, st)
    if stat.S_ISDIR(st.st_mode):
        for dirpath, dirnames, filenames in os.walk(src):
            rel = os.path.relpath(dirpath, src)
            for entry in sorted(dirnames + filenames):
                path = os.path.join(dirpath, entry)
                est = os.lstat(path)
                yield os.path.normpath(os.path.join(top, rel, entry)), est, _opener(path, est)


def _opener(path: str, st: os.stat_result) -> Any:
    if stat.S_ISLNK(st.st_mode):
        return os.readlink(path)
    if stat.S_ISREG(st.st_mode):
        return lambda: open(path, "rb")  # the writer closes it
    return None


def _tar_entries(tar: tarfile.TarFile) -> Iterator[Entry]:
    for info in tar:
        name = os.path.normpath(info.name)
        if name.startswith(("/", "..")) or "/../" in f"/{name}/":
            raise InvalidArgument(f"tar entry {info.name!r} would land outside the destination; refused")
        if info.islnk():
            raise InvalidArgument(f"tar entry {info.name!r} is a hard link; imod cp takes files, dirs and symlinks")
        yield name, info, (info.linkname if info.issym() else (lambda info=info: tar.extractfile(info)))


def _write_entries(fs: ContainerFS, base: str, entries: Iterator[Entry]) -> None:
    dirs: list[tuple[str, Any]] = []
    for rel, meta, data in entries:
        where = fs.resolve(str(PurePosixPath(base) / rel), follow_last=False)
        parent = fs.host(fs.resolve(str(PurePosixPath(where).parent)))
        host = os.path.join(parent, PurePosixPath(where).name) if where != "/" else fs.host("/")
        mode = meta.st_mode if isinstance(meta, os.stat_result) else _tar_mode(meta)
        if stat.S_ISDIR(mode):
            if not os.path.isdir(host) or os.path.islink(host):
                _remove(host)
                os.mkdir(host, 0o700)
            dirs.append((host, meta))
            continue
        _remove(host)
        if stat.S_ISLNK(mode):
            os.symlink(data, host)
        elif stat.S_ISREG(mode):
            fd = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out, data() as src:
                shutil.copyfileobj(src, out, 1 << 20)
        else:
            continue  # devices, fifos and sockets are not copied in
        _apply(host, meta, mode)
    for host, meta in reversed(dirs):  # after their content, which changes their mtime
        _apply(host, meta, meta.st_mode if isinstance(meta, os.stat_result) else _tar_mode(meta))


def _tar_mode(info: tarfile.TarInfo) -> int:
    kind = stat.S_IFDIR if info.isdir() else stat.S_IFLNK if info.issym() else stat.S_IFREG if info.isfile() else 0
    return kind | (info.mode & 0o7777)


def _apply(host: str, meta: Any, mode: int) -> None:
    uid, gid = (meta.st_uid, meta.st_gid) if isinstance(meta, os.stat_result) else (meta.uid, meta.gid)
    mtime = meta.st_mtime if isinstance(meta, os.stat_result) else meta.mtime
    os.chown(host, uid, gid, follow_symlinks=False)
    if not stat.S_ISLNK(mode):
        os.chmod(host, stat.S_IMODE(mode))
    os.utime(host, (mtime, mtime), follow_symlinks=False)


def _remove(host: str) -> None:
    """Clear the way for a new entry; an existing directory is only removed to put a non-directory there."""
    if not os.path.lexists(host):
        return
    if os.path.isdir(host) and not os.path.islink(host):
        shutil.rmtree(host)
    else:
        os.unlink(host)


def parse_cp_args(src: str, dest: str) -> tuple[str, str, str, str]:
    """Which side is the container: returns (direction, container, container path, host path)."""
    def split(arg: str) -> tuple[str, str] | None:
        if arg.startswith(("/", ".", "-")) or ":" not in arg:
            return None
        name, _, path = arg.partition(":")
        return name, path or "/"

    left, right = split(src), split(dest)
    if left and right:
        raise InvalidArgument("copying between two containers is not supported: copy through the host")
    if left:
        return "out", left[0], left[1], dest
    if right:
        return "in", right[0], right[1], src
    raise InvalidArgument("name the container side as CONTAINER:PATH, e.g. `imod cp web:/etc/hosts .`")
