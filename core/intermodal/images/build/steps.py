"""The steps that change the filesystem: RUN in a container, COPY/ADD as a layer tar, WORKDIR's mkdir.

Each works on a scratch mount of the state's layers under the engine's
``tmp/``, removed in ``finally`` whatever happens. RUN runs in a real
container of intermodal's OCI runtime (in-process), with no network (a
fresh, empty network namespace), Docker's default capabilities, seccomp
profile and masked paths (`containers.config.build_config`); its change is
the overlay's upper directory (`diff.py`). COPY and ADD do not copy into a
mount: the layer tar is written straight from the sources, which reads
each file once.
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from intermodal.errors import IntermodalError, KernelError
from intermodal.fsutil import remove_tree
from intermodal.images import mediatypes as mt
from intermodal.images.build.cache import State
from intermodal.images.manifest import Descriptor

MAX_SYMLINKS = 40  # as the kernel's path walk (path_resolution(7))


@contextmanager
def mounted(images: Any, state: State, what: str) -> Iterator[tuple[Path, Path]]:
    """(scratch directory, the state's root filesystem), writable; unmounted and removed afterwards."""
    paths = images.engine.paths
    directory = paths.tmp / f"build-{what}-{os.getpid()}-{os.urandom(4).hex()}"
    directory.mkdir(parents=True, mode=0o700)
    layers = images.store.layers
    try:
        descriptors = [Descriptor.from_json(d, "build layer") for d in state.layers]
        rootfs = layers.mount(state.diff_ids, directory, descriptors)
        yield directory, Path(rootfs)
    finally:
        try:
            layers.unmount(directory)
        finally:
            remove_tree(directory)


@contextmanager
def viewed(images: Any, state: State, what: str) -> Iterator[Path]:
    """The state's root filesystem to read only: on vfs the top layer's snapshot itself (no copy)."""
    layers = images.store.layers
    if layers.driver.name != "vfs":
        with mounted(images, state, what) as (_, rootfs):
            yield rootfs
        return
    if not state.diff_ids:
        empty = images.engine.paths.tmp / f"build-{what}-{os.getpid()}-{os.urandom(4).hex()}"
        empty.mkdir(parents=True, mode=0o755)
        try:
            yield empty
        finally:
            remove_tree(empty)
        return
    descriptors = [Descriptor.from_json(d, "build layer") for d in state.layers]
    with images.store.gc_guard():
        yield layers.ensure(descriptors, state.diff_ids)[-1].path


def add_layer(images: Any, state: State, write: Callable[[BinaryIO], None]) -> tuple[dict[str, Any], str]:
    """Stream the tar that *write* produces into a new layer on top of *state*; (descriptor json, diff_id)."""
    from intermodal.storage.layers import chain_ids

    parent = chain_ids(state.diff_ids)[-1] if state.diff_ids else None
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            with os.fdopen(write_fd, "wb", buffering=1 << 20) as out:
                write(out)
        except BaseException as exc:  # handed to the reading side below
            failure.append(exc)

    thread = threading.Thread(target=produce, name="build-layer", daemon=True)
    thread.start()
    try:
        with os.fdopen(read_fd, "rb", buffering=1 << 20) as source:
            try:
                descriptor, diff_id = images.store.layers.create_from_tar(source, parent)
            except BaseException:
                if failure:
                    raise failure[0] from None
                raise
            source.read()  # let the writer finish if the tar reader stopped at the end-of-archive blocks
    finally:
        thread.join()
    if failure:
        raise failure[0]
    return Descriptor(mt.OCI_LAYER_GZIP, descriptor.digest, descriptor.size).to_json(), diff_id


# -- paths inside a root ---------------------------------------------------------------


def resolve_in_root(rootfs: Path, path: str) -> str:
    """*path* with the symlinks of its existing components followed inside *rootfs* (never out of it)."""
    parts = [p for p in path.split("/") if p and p != "."]
    done: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        host = rootfs.joinpath(*done, part)
        try:
            st = os.lstat(host)
        except (FileNotFoundError, NotADirectoryError):
            done.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > MAX_SYMLINKS:
                raise KernelError("resolve", path, 40, "too many levels of symbolic links in the image")
            target = os.readlink(host)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        done.append(part)
    return "/" + "/".join(done)


# -- COPY / ADD ------------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int


def resolve_owner(rootfs: Path, chown: str | None) -> Owner | None:
    """``--chown=user[:group]`` against the image's passwd/group; a lone user gives its number as the gid too."""
    if not chown:
        return None
    from intermodal.containers.config import resolve_user

    group = chown.partition(":")[2]
    resolved = resolve_user(str(rootfs), chown)
    uid = resolved.uid
    gid = resolved.gid if group else uid  # Docker: "the same numeric UID as the GID"
    return Owner(uid, gid)


@dataclass
class CopyItem:
    """One entry to write: its path in the image and where its bytes come from."""

    dest: str  # absolute, in the image
    host: Path | None  # None: a directory made on the way
    st: os.stat_result | None
    data: bytes | None = None  # a heredoc's text


class LayerTar:
    """A layer tar being written: parents first, each path once, owners and modes as Docker sets them."""

    def __init__(self, out: BinaryIO, rootfs: Path, owner: Owner | None, chmod: int | None) -> None:
        self.tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT,  # noqa: SIM115 - close()
                                copybufsize=1 << 20)
        self.rootfs, self.owner, self.chmod = rootfs, owner, chmod
        self.written: set[str] = set()

    def close(self) -> None:
        self.tar.close()

    def parents(self, dest: str) -> None:
        """The directories above *dest*: as the image has them, or new (0755, owned like the copy)."""
        parts = [p for p in dest.split("/") if p][:-1]
        for n in range(1, len(parts) + 1):
            path = "/" + "/".join(parts[:n])
            if path in self.written:
                continue
            self.written.add(path)
            host = self.rootfs / path.lstrip("/")
            info = tarfile.TarInfo(path.lstrip("/"))
            info.type = tarfile.DIRTYPE
            if os.path.isdir(host) and not os.path.islink(host):
                st = os.lstat(host)
                info.mode, info.uid, info.gid, info.mtime = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(
                    st.st_mtime)
            else:
                info.mode = 0o755
                info.uid, info.gid = (self.owner.uid, self.owner.gid) if self.owner else (0, 0)
                info.mtime = 0
            self.tar.addfile(info)

    def add(self, item: CopyItem) -> None:
        name = item.dest.lstrip("/")
        if not name or item.dest in self.written:
            return
        self.parents(item.dest)
        self.written.add(item.dest)
        if item.data is not None:
            import io

            info = tarfile.TarInfo(name)
            info.size, info.mode = len(item.data), self.chmod if self.chmod is not None else 0o644
            self._own(info)
            self.tar.addfile(info, io.BytesIO(item.data))
            return
        assert item.host is not None and item.st is not None
        # a second name of a file already written becomes a hard link to it (tarfile tracks the inodes)
        info = self.tar.gettarinfo(str(item.host), name)
        info.uname = info.gname = ""
        self._own(info)
        if self.chmod is not None and info.type != tarfile.SYMTYPE:
            info.mode = self.chmod
        if info.type == tarfile.REGTYPE:
            with open(item.host, "rb") as f:
                self.tar.addfile(info, f)
        else:
            self.tar.addfile(info)

    def add_archive(self, host: Path, dest_dir: str) -> None:
        """ADD of a local tar (plain, gzip, bzip2, xz): its entries under *dest_dir*, owners kept."""
        from intermodal.storage.streams import decompressed, sniffed

        self.parents(dest_dir.rstrip("/") + "/x")
        with open(host, "rb") as raw:
            compression, stream = sniffed(raw)
            with tarfile.open(fileobj=decompressed(stream, compression), mode="r|") as src:  # type: ignore[arg-type]
                for member in src:
                    rel = posixpath.normpath("/" + member.name).lstrip("/")
                    if not rel or rel == ".":
                        continue
                    member.name = posixpath.join(dest_dir, rel).lstrip("/")
                    if member.islnk():
                        member.linkname = posixpath.join(dest_dir, posixpath.normpath(
                            "/" + member.linkname).lstrip("/")).lstrip("/")
                    if self.owner:
                        member.uid, member.gid, member.uname, member.gname = self.owner.uid, self.owner.gid, "", ""
                    self.parents("/" + member.name)
                    self.written.add("/" + member.name)
                    self.tar.addfile(member, src.extractfile(member) if member.isreg() else None)

    def _own(self, info: tarfile.TarInfo) -> None:
        info.uid, info.gid = (self.owner.uid, self.owner.gid) if self.owner else (0, 0)


def is_archive(path: Path) -> bool:
    """Whether ADD unpacks *path*: a tar, or a gzip/bzip2/xz-compressed tar (Docker's archive check)."""
    from intermodal.storage.streams import decompressed, sniffed

    try:
        with open(path, "rb") as raw:
            compression, stream = sniffed(raw)
            if compression == "zstd":
                return False
            head = decompressed(stream, compression).read(512)
    except (OSError, EOFError, IntermodalError, ValueError):
        return False
    return len(head) >= 262 and head[257:262] == b"ustar"


# -- RUN ---------------------------------------------------------------------------


@dataclass
class RunResult:
    code: int
    output: bytes


def run_container(images: Any, rootfs: Path, image_config: dict[str, Any], argv: list[str],
                  extra_env: list[tuple[str, str]], emit: Callable[[bytes], None]) -> tuple[RunResult, set[str]]:
    """Run *argv* in a container on *rootfs*; stream its output to *emit*. Returns the result and the
    mount points the runtime had to create (empty, not content)."""
    import json

    from intermodal.containers import config as oci
    from intermodal.containers.spec import ContainerSpec
    from intermodal.runtime.container import Runtime

    paths = images.engine.paths
    cid = "build-" + os.urandom(6).hex()
    section = image_config.get("config") or {}
    # no USER: root, also in an image without /etc/passwd (scratch), where the name cannot be looked up
    user = section.get("User") or ("root" if (rootfs / "etc" / "passwd").is_file() else "0:0")
    spec = ContainerSpec(image="build", command=tuple(argv), entrypoint=(), env=tuple(extra_env),
                         workdir=section.get("WorkingDir") or "/", user=user, network="none")
    inputs = oci.BundleInputs(cid, str(rootfs), cid[6:18], {}, (), f"/intermodal/{cid}")
    bundle = oci.build_config(spec, image_config, inputs)
    created = {m["destination"] for m in bundle["mounts"]
               if not os.path.lexists(rootfs / m["destination"].lstrip("/"))}
    bundle_dir = rootfs.parent / "bundle"
    bundle_dir.mkdir(exist_ok=True)
    (bundle_dir / "config.json").write_text(json.dumps(bundle))
    runtime = Runtime(paths.run_root / "build-runtime")
    read_fd, write_fd = os.pipe()
    devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    collected: list[bytes] = []

    def pump() -> None:
        while chunk := os.read(read_fd, 65536):
            collected.append(chunk)
            emit(chunk)

    reader = threading.Thread(target=pump, name="build-run-output", daemon=True)
    reader.start()
    try:
        try:
            code = runtime.run(cid, bundle_dir, stdio=(devnull, write_fd, write_fd))
        finally:
            os.close(write_fd)
            os.close(devnull)
            reader.join(timeout=60)  # a daemon the step left behind could hold the pipe: bounded
    finally:
        os.close(read_fd)
    return RunResult(code, b"".join(collected)), created


def make_skip(created: set[str], rootfs_dir: Path) -> Callable[[str, os.stat_result], bool]:
    """Leave out the empty mount points the runtime created (/proc in an image without one)."""

    def skip(rel: str, st: os.stat_result) -> bool:
        if "/" + rel not in created:
            return False
        return (stat.S_ISDIR(st.st_mode) and not os.listdir(rootfs_dir / rel)) or (
            stat.S_ISREG(st.st_mode) and st.st_size == 0)

    return skip
