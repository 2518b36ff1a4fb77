"""Safe, single-pass extraction of a layer tar into a directory.

Every entry is checked before anything is written: names with ``..`` or a
leading ``/`` are refused, no entry is written through a symlink (each parent
must be a real directory of this extraction), hardlinks must name a file
inside the layer. Whiteouts follow the OCI image spec (layer.md):

* ``overlay``: ``.wh.name`` becomes a character device 0/0 and
  ``.wh..wh..opq`` the xattr ``trusted.overlay.opaque=y`` on its directory,
  which is how overlayfs marks deletions in a lower directory
  (Documentation/filesystems/overlayfs.rst, "whiteouts and opaque directories");
* ``apply``: the deletions are carried out on the directory, which then holds
  a copy of the parent snapshot (the vfs driver).

Ownership, modes, times and xattrs come from the tar; directory metadata is
applied last, because creating entries in a directory changes its mtime.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile

from intermodal.errors import InvalidArchive, KernelError, UnsafePath
from intermodal.records import Frozen
from intermodal.storage.streams import CHUNK, ForwardReader

TYPE_CHECKING = False
if TYPE_CHECKING:
    from intermodal.storage.streams import Readable

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
# xattrs a layer may not set: they would steer overlayfs itself (redirects,
# metacopy, opaque) and so reach files of other layers.
_FORBIDDEN_XATTR_PREFIXES = ("trusted.overlay.",)
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class Extracted(Frozen):
    size: int  # bytes of regular-file content written
    entries: int


def extract(stream: Readable, dest: str | os.PathLike, *, whiteouts: str) -> Extracted:
    """Extract the tar *stream* into the existing directory *dest*.

    *whiteouts* is ``"overlay"`` or ``"apply"`` (see the module docstring).
    Raises UnsafePath (naming the entry) or InvalidArchive; on error, *dest*
    holds a partial tree the caller must remove.
    """
    if whiteouts not in ("overlay", "apply"):
        raise ValueError(f"whiteouts must be 'overlay' or 'apply', not {whiteouts!r}")
    reader = ForwardReader(stream)
    if not reader.peek(tarfile.BLOCKSIZE).strip(b"\0"):
        return Extracted(0, 0)  # an empty layer: nothing but end-of-archive zeros
    try:
        # open() already reads the first header, so it gets its own error message
        tar = tarfile.open(fileobj=reader, mode="r:")  # type: ignore[arg-type]  # noqa: SIM115
    except tarfile.TarError as exc:
        raise InvalidArchive(f"layer is not a tar archive ({exc}); check the file or media type") from None
    with tar:
        return _Extractor(os.fspath(dest), whiteouts == "overlay", reader).run(tar)


class _Extractor:
    def __init__(self, root: str, overlay: bool, reader: ForwardReader) -> None:
        self.root = root.rstrip("/")
        self.reader = reader
        self.overlay = overlay
        self.is_root = os.geteuid() == 0
        self.dirs: set[str] = {""}  # relative paths known to be real directories
        self.dir_meta: dict[str, tarfile.TarInfo] = {}
        # vfs only: what this layer wrote, which an opaque marker must keep
        self.written: set[str] = set()
        self.size = 0
        self.entries = 0

    def run(self, tar: tarfile.TarFile) -> Extracted:
        where = "at its start"
        try:
            for member in tar:
                where = f"in or after entry {member.name!r}"
                self.entry(tar, member)
                self.entries += 1
                tar.members.clear()  # a stream needs no index; keep memory flat
            for rel, info in self.dir_meta.items():
                self.meta(self.path(rel), info, symlink=False)
        except tarfile.TarError as exc:
            raise InvalidArchive(f"layer tar is corrupt or truncated {where} ({exc}); fetch it again") from None
        except OSError as exc:
            raise KernelError.from_oserror(
                f"unpack layer ({where}):", exc, "check free space and inodes in the engine root"
            ) from None
        return Extracted(self.size, self.entries)

    def path(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    # -- one entry -------------------------------------------------------------

    def entry(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        rel = clean_name(info.name, info.name)
        parent, _, base = rel.rpartition("/")
        if rel:
            self.parent_dirs(parent, info.name, create=True)
        if base.startswith(WHITEOUT_PREFIX):
            self.whiteout(parent, base, info.name)
            return
        path = self.path(rel)
        if not rel and not info.isdir():
            raise InvalidArchive(f"layer entry {info.name!r} names the layer root but is not a directory")
        if info.isdir():
            if not self.replace(path, rel, keep_dir=True):
                os.mkdir(path, 0o700)
            self.dirs.add(rel)
            self.dir_meta[rel] = info
        else:
            self.replace(path, rel, keep_dir=False)
            if not self.create(tar, info, rel, path):
                return
        if not self.overlay:
            self.written.add(rel)

    def create(self, tar: tarfile.TarFile, info: tarfile.TarInfo, rel: str, path: str) -> bool:
        if info.isreg():
            self.write_file(tar, info, path)
            self.size += info.size
        elif info.issym():
            os.symlink(info.linkname, path)
            self.meta(path, info, symlink=True)
            return True
        elif info.islnk():
            self.hardlink(info, path)
            return True  # the inode's metadata came with its first name
        elif info.isfifo():
            os.mkfifo(path)
        elif info.ischr() or info.isblk():
            if not self.is_root:
                return False  # as rootless Docker does: only root may make device nodes
            kind = stat.S_IFCHR if info.ischr() else stat.S_IFBLK
            os.mknod(path, kind | 0o600, os.makedev(info.devmajor, info.devminor))
        else:
            raise InvalidArchive(f"layer entry {info.name!r} has unsupported tar type {info.type!r}")
        self.meta(path, info, symlink=False)
        return True

    def write_file(self, tar: tarfile.TarFile, info: tarfile.TarInfo, path: str) -> None:
        fd = os.open(path, _OPEN_FLAGS, 0o600)
        try:
            if info.size:
                # plain files are read straight from the stream; sparse ones need tarfile's map
                src = tar.extractfile(info) if info.sparse is not None else self.reader
                if src is None:
                    raise InvalidArchive(f"layer entry {info.name!r} has no data")
                if src is self.reader:
                    self.reader.seek(info.offset_data)
                remaining = info.size
                while remaining > 0:
                    chunk = src.read(min(CHUNK, remaining))
                    if not chunk:
                        raise InvalidArchive(f"layer tar ends inside {info.name!r}; the layer is truncated")
                    _write_all(fd, chunk)
                    remaining -= len(chunk)
        finally:
            os.close(fd)

    def hardlink(self, info: tarfile.TarInfo, path: str) -> None:
        target = clean_name(info.linkname, info.name)
        tparent = target.rpartition("/")[0]
        if not target:
            raise UnsafePath(f"layer entry {info.name!r} is a hardlink to the layer root; refused")
        self.parent_dirs(tparent, info.name, create=False)
        try:
            # follow_symlinks=False: link the symlink itself, never what it points to
            os.link(self.path(target), path, follow_symlinks=False)
        except FileNotFoundError:
            raise InvalidArchive(
                f"layer entry {info.name!r} is a hardlink to {info.linkname!r}, which is not in the layer"
            ) from None
        except IsADirectoryError:
            raise InvalidArchive(f"layer entry {info.name!r} is a hardlink to a directory; refused") from None
        except PermissionError:
            raise InvalidArchive(f"layer entry {info.name!r}: cannot hardlink to {info.linkname!r}") from None

    def whiteout(self, parent: str, base: str, name: str) -> None:
        if base == OPAQUE_MARKER:
            if self.overlay:
                _setxattr(self.path(parent), OPAQUE_XATTR, b"y", follow=False)
            else:
                self.clear_lower(parent)
            return
        hidden = base[len(WHITEOUT_PREFIX):]
        if hidden in ("", ".", "..") or hidden.startswith(WHITEOUT_PREFIX):
            raise UnsafePath(f"layer entry {name!r} is a whiteout of {hidden!r}; refused")
        rel = f"{parent}/{hidden}" if parent else hidden
        path = self.path(rel)
        self.replace(path, rel, keep_dir=False)
        if self.overlay:
            os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))

    def clear_lower(self, parent: str) -> None:
        """vfs opaque directory: drop what lower layers put there, keep what this layer did."""
        base = self.path(parent)
        prefix = f"{parent}/" if parent else ""
        with os.scandir(base) as it:
            names = [e.name for e in it]
        for child in names:
            rel = prefix + child
            if rel not in self.written:
                self.replace(self.path(rel), rel, keep_dir=False)

    # -- checks and replacement ------------------------------------------------

    def parent_dirs(self, parent: str, name: str, *, create: bool) -> None:
        """Make sure every component of *parent* is a real directory of this tree."""
        if parent in self.dirs:
            return
        current = ""
        for comp in parent.split("/"):
            current = f"{current}/{comp}" if current else comp
            if current in self.dirs:
                continue
            path = self.path(current)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                if not create:
                    raise InvalidArchive(
                        f"layer entry {name!r} refers to {current!r}, which is not in the layer"
                    ) from None
                os.mkdir(path, 0o755)  # implied parent, as Docker creates it
                self.dirs.add(current)
                continue
            if stat.S_ISLNK(st.st_mode):
                raise UnsafePath(
                    f"layer entry {name!r} would be written through the symlink {current!r}, "
                    "which could point outside the layer; refused"
                )
            if not stat.S_ISDIR(st.st_mode):
                raise InvalidArchive(f"layer entry {name!r}: {current!r} is not a directory")
            self.dirs.add(current)

    def replace(self, path: str, rel: str, *, keep_dir: bool) -> bool:
        """Remove what is at *path* so a new entry can take its place; True if a directory stayed."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            shutil.rmtree(path)
            self.forget(rel)
        else:
            os.unlink(path)
        if not self.overlay:
            self.written.discard(rel)
        return False

    def forget(self, rel: str) -> None:
        prefix = rel + "/"
        self.dirs = {d for d in self.dirs if d != rel and not d.startswith(prefix)}
        self.dir_meta = {d: i for d, i in self.dir_meta.items() if d != rel and not d.startswith(prefix)}
        if not self.overlay:
            self.written = {w for w in self.written if not w.startswith(prefix)}

    # -- metadata --------------------------------------------------------------

    def meta(self, path: str, info: tarfile.TarInfo, *, symlink: bool) -> None:
        # Order matters: chown clears setuid bits and file capabilities, so
        # modes and xattrs come after it (chown(2)).
        try:
            if self.is_root:
                os.lchown(path, info.uid, info.gid)
            if not symlink:
                os.chmod(path, info.mode & 0o7777)
        except OSError as exc:
            raise KernelError.from_oserror("restore owner and mode of", exc) from None
        for name, value in _xattrs(info):
            _setxattr(path, name, value, follow=False, lenient=True)
        mtime = int(info.mtime * 1_000_000_000)
        atime = _pax_time(info, "atime", mtime)
        os.utime(path, ns=(atime, mtime), follow_symlinks=False)


def clean_name(name: str, entry: str) -> str:
    """The relative path of a tar name, or UnsafePath naming *entry*."""
    if name.startswith("/"):
        raise UnsafePath(f"layer entry {entry!r} has an absolute path; refused (it would land outside the layer)")
    parts = []
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            raise UnsafePath(f"layer entry {entry!r} contains '..'; refused (it would land outside the layer)")
        parts.append(comp)
    return "/".join(parts)


def _xattrs(info: tarfile.TarInfo) -> list[tuple[str, bytes]]:
    out = []
    for key, value in info.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            name = key[len("SCHILY.xattr."):]
            # tarfile decodes pax values as UTF-8 with surrogateescape; undo it
            data = value.encode("utf-8", "surrogateescape")
        elif key.startswith("LIBARCHIVE.xattr."):
            import base64
            import urllib.parse

            name = urllib.parse.unquote(key[len("LIBARCHIVE.xattr."):])
            data = base64.b64decode(value + "=" * (-len(value) % 4))
        else:
            continue
        if not name.startswith(_FORBIDDEN_XATTR_PREFIXES):
            out.append((name, data))
    return out


def _pax_time(info: tarfile.TarInfo, key: str, default: int) -> int:
    value = info.pax_headers.get(key)
    if value is None:
        return default
    try:
        return int(float(value) * 1_000_000_000)
    except ValueError:
        return default


def _setxattr(path: str, name: str, value: bytes, *, follow: bool, lenient: bool = False) -> None:
    try:
        os.setxattr(path, name, value, follow_symlinks=follow)
    except OSError as exc:
        # A filesystem without (this kind of) xattrs, or user.* on a symlink:
        # the file is still usable, as Docker treats it.
        if lenient and exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
            return
        raise KernelError("setxattr " + name, path, exc.errno or errno.EIO) from None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
