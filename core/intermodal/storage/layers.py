"""The layer store: every layer unpacked once, atomically, under a per-layer lock.

Layout under the engine root::

    layers/<driver>/<chain hex>/diff        the layer's directory (overlay: its own changes;
                                            vfs: the full snapshot up to it)
    layers/<driver>/<chain hex>/layer.json  diff_id, chain_id, parent, size
    layers/empty/                           the lower directory of an image without layers
    layers/mounts/<key>.json                the layers each mounted container uses
    locks/layers/<chain hex>                held while the layer is unpacked or removed
    tmp/layer-<pid>-...                     work in progress

A layer is unpacked into ``tmp/`` and renamed into place once its stream
hashed to the expected diff_id, so a layer directory exists only complete.
What a killed command leaves in ``tmp/`` is removed by the next command that
unpacks that layer, and by ``remove_unused``.
"""

from __future__ import annotations

import os
from pathlib import Path

from intermodal.errors import DigestMismatch, StoreCorrupted
from intermodal.fsutil import atomic_write_json, read_json, remove_tree
from intermodal.images import mediatypes as mt
from intermodal.images.digest import sha256_digest
from intermodal.locking import locked
from intermodal.records import Frozen
from intermodal.storage import drivers

# `imod run` only mounts layers: typing, dataclasses, the manifest types and
# the stream machinery (hashlib, zlib) are for unpacking, imported there.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import BinaryIO

    from intermodal.images.blobs import BlobStore
    from intermodal.images.manifest import Descriptor
    from intermodal.paths import EnginePaths

LAYER_LOCK_TIMEOUT = 900.0  # a waiter may wait for someone else's multi-gigabyte layer


class Layer(Frozen):
    diff_id: str  # sha256 of the uncompressed tar
    chain_id: str  # OCI chain id (image-spec config.md, "Layer ChainID")
    size: int  # bytes unpacked
    path: Path  # the layer's directory (overlay: its diff dir)
    parent: str | None = None  # chain id of the layer below


def chain_id(parent: str | None, diff_id: str) -> str:
    """ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    if parent is None:
        return diff_id
    return sha256_digest(f"{parent} {diff_id}".encode())


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    out: list[str] = []
    parent = None
    for diff_id in diff_ids:
        parent = chain_id(parent, diff_id)
        out.append(parent)
    return out


class LayerStore:
    def __init__(self, paths: EnginePaths, blobs: BlobStore) -> None:
        self.paths = paths
        self.blobs = blobs
        self._driver: drivers.Driver | None = None
        # chain ids this store object unpacked itself (not found ready): for
        # progress output ("Pull complete" vs "Already exists") and tests
        self.unpacked: list[str] = []

    @property
    def driver(self) -> drivers.Driver:
        if self._driver is None:
            self._driver = drivers.choose(self.paths)
        return self._driver

    # -- reading -------------------------------------------------------------------

    def get(self, chain: str) -> Layer | None:
        """The unpacked layer with chain id *chain*, or None."""
        directory = self._dir(chain)
        meta = read_json(directory / "layer.json")
        if meta is None:
            return None
        return Layer(meta["diff_id"], chain, int(meta["size"]), directory / "diff", meta.get("parent"))

    def layers(self, diff_ids: Sequence[str]) -> list[Layer]:
        """The unpacked layers of an image, bottom first. Raises StoreCorrupted if one is missing."""
        out = []
        for diff_id, chain in zip(diff_ids, chain_ids(diff_ids), strict=True):
            layer = self.get(chain)
            if layer is None:
                raise StoreCorrupted(
                    f"layer {diff_id} is not unpacked in {self.paths.layers / self.driver.name}; "
                    "pull or load the image again to restore it"
                )
            out.append(layer)
        return out

    def lower_dirs(self, diff_ids: Sequence[str]) -> list[Path]:
        """Directories for an overlay mount's lowerdir, topmost first (vfs: one ready snapshot)."""
        lowers = self.driver.lower_dirs([layer.path for layer in self.layers(diff_ids)])
        return lowers or [self._empty()]

    # -- unpacking -----------------------------------------------------------------

    def ensure(self, descriptors: Sequence[Descriptor], diff_ids: Sequence[str]) -> list[Layer]:
        """Unpack each layer of an image that is not unpacked yet; return all, bottom first."""
        if len(descriptors) != len(diff_ids):
            raise StoreCorrupted(
                f"image lists {len(descriptors)} layer blobs but {len(diff_ids)} diff_ids; the image is broken"
            )
        out: list[Layer] = []
        parent = None
        for descriptor, diff_id in zip(descriptors, diff_ids, strict=True):
            layer = self.ensure_layer(descriptor, diff_id, parent)
            assert layer is not None  # the parent was ensured just before
            out.append(layer)
            parent = layer.chain_id
        return out

    def ensure_layer(self, descriptor: Descriptor, diff_id: str, parent_chain_id: str | None) -> Layer | None:
        """Unpack one layer from its blob unless it is there; safe from threads and processes.

        Returns None, doing nothing, when the driver builds on the parent
        (vfs) and the parent is not unpacked yet: `ensure` does it in order.
        Raises DigestMismatch (nothing kept), UnsafePath, InvalidArchive, BlobNotFound.
        """
        chain = chain_id(parent_chain_id, diff_id)
        layer = self.get(chain)
        if layer is not None:
            return layer
        parent_dir = self._parent_dir(parent_chain_id)
        if parent_dir is False:
            return None
        with locked(self._lock_path(chain), timeout=LAYER_LOCK_TIMEOUT):
            layer = self.get(chain)
            if layer is not None:
                return layer  # another command unpacked it while we waited
            self._remove_stale(chain)
            tmp = self.paths.tmp / f"layer-{os.getpid()}-{_hex(chain)}"
            try:
                size = self._unpack_blob(descriptor, diff_id, tmp, parent_dir or None)
                return self._publish(tmp, chain, diff_id, parent_chain_id, size)
            except BaseException:
                remove_tree(tmp)
                raise

    def create_from_tar(self, source: BinaryIO, parent_chain_id: str | None = None) -> tuple[Descriptor, str]:
        """Store an uncompressed tar stream as a gzip layer blob and unpack it, in one pass.

        The tar is hashed (diff_id), compressed into the blob store and
        extracted while it is read. Returns (blob descriptor, diff_id).
        *parent_chain_id* names the layer below (commit, build); the caller
        holds the image store's gc guard until an image references the blob.
        """
        parent_dir = self._parent_dir(parent_chain_id)
        if parent_dir is False:
            raise StoreCorrupted(f"parent layer {parent_chain_id} is not unpacked; pull the base image again")
        from intermodal.images.manifest import Descriptor
        from intermodal.storage.streams import CompressingTee
        from intermodal.storage.unpack import extract  # tarfile: not for a container's mount

        tmp = self.paths.tmp / f"layer-{os.getpid()}-new-{os.urandom(6).hex()}"
        writer = self.blobs.writer()

        tee = CompressingTee(source, writer)  # type: ignore[arg-type]
        try:
            tmp.mkdir(parents=True)
            self.driver.prepare(tmp / "diff", parent_dir or None)
            result = extract(tee, tmp / "diff", whiteouts=self.driver.whiteouts)
            tee.finish()
            blob_digest = writer.commit()
            diff_id = tee.digest
            chain = chain_id(parent_chain_id, diff_id)
            with locked(self._lock_path(chain), timeout=LAYER_LOCK_TIMEOUT):
                if self.get(chain) is None:
                    self._remove_stale(chain)
                    self._publish(tmp, chain, diff_id, parent_chain_id, result.size)
        except BaseException:
            writer.abort()
            raise
        finally:
            tee.close()  # stop the compression threads, also after an error
            remove_tree(tmp)  # gone after publishing; the leftover when the layer existed
        return Descriptor(mt.OCI_LAYER_GZIP, blob_digest, writer.size), diff_id

    def _unpack_blob(self, descriptor: Descriptor, diff_id: str, tmp: Path, parent_dir: Path | None) -> int:
        from intermodal.storage.streams import HashingReader, decompressed
        from intermodal.storage.unpack import extract

        tmp.mkdir(parents=True)
        self.driver.prepare(tmp / "diff", parent_dir)
        compression = mt.layer_compression(descriptor.media_type or mt.OCI_LAYER_GZIP)
        with self.blobs.open(descriptor.digest) as raw:
            reader = HashingReader(decompressed(raw, compression))
            result = extract(reader, tmp / "diff", whiteouts=self.driver.whiteouts)
            reader.drain()
        if reader.digest != diff_id:
            raise DigestMismatch(f"layer {descriptor.digest} (uncompressed)", diff_id, reader.digest)
        return result.size

    def _publish(self, tmp: Path, chain: str, diff_id: str, parent: str | None, size: int) -> Layer:
        atomic_write_json(tmp / "layer.json", {"diff_id": diff_id, "chain_id": chain, "parent": parent, "size": size})
        final = self._dir(chain)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(tmp, final)  # the layer exists only complete
        self.unpacked.append(chain)
        return Layer(diff_id, chain, size, final / "diff", parent)

    def _parent_dir(self, parent_chain_id: str | None) -> Path | bool | None:
        """The parent's directory when the driver copies it; False if it is needed but missing."""
        if parent_chain_id is None or not self.driver.needs_parent:
            return None
        parent = self.get(parent_chain_id)
        return parent.path if parent is not None else False

    # -- container mounts ----------------------------------------------------------

    def mount(self, diff_ids: Sequence[str], container_dir: Path,
              descriptors: Sequence[Descriptor] | None = None) -> Path:
        """Make a writable root filesystem of the image's layers for a container; return it.

        overlay: mounted at ``container_dir/merged`` with ``upper`` and ``work``
        beside it; vfs: a copy at ``container_dir/rootfs``. Idempotent. The
        layers stay in use (prune keeps them) until `unmount`. With the
        image's layer *descriptors*, missing layers are unpacked from their
        blobs first (e.g. after the storage driver changed).
        """
        container_dir = Path(container_dir).absolute()
        with locked(self.paths.locks / "gc", shared=True):
            layers = self.ensure(descriptors, diff_ids) if descriptors is not None else self.layers(diff_ids)
            lowers = self.driver.lower_dirs([layer.path for layer in layers]) or [self._empty()]
            atomic_write_json(self._mount_record(container_dir), {
                "container_dir": str(container_dir),
                "driver": self.driver.name,
                "chain_ids": [layer.chain_id for layer in layers],
            })
            return self.driver.mount(lowers, container_dir)

    def unmount(self, container_dir: Path) -> None:
        """Undo `mount` (a missing mount counts as done); the layers are free for prune again."""
        container_dir = Path(container_dir).absolute()
        record = self._mount_record(container_dir)
        meta = read_json(record) or {}
        driver = drivers.by_name(meta["driver"]) if meta.get("driver") else self.driver
        driver.unmount(container_dir)
        try:
            record.unlink()
        except FileNotFoundError:
            pass

    def in_use(self) -> set[str]:
        """Chain ids of layers that mounted containers use: prune may not remove them."""
        used: set[str] = set()
        mounts = self.paths.layers / "mounts"
        for entry in os.scandir(mounts) if mounts.is_dir() else ():
            if not entry.name.endswith(".json"):
                continue
            record = read_json(Path(entry.path)) or {}
            # a container removed without `unmount` leaves a record naming a missing directory
            if record.get("container_dir") and os.path.isdir(record["container_dir"]):
                used.update(record.get("chain_ids", ()))
        return used

    # -- removal -------------------------------------------------------------------

    def remove_unused(self, keep_diff_ids: set[str], images: Iterable[Sequence[str]] | None = None) -> list[str]:
        """Remove unpacked layers no image uses (called by prune, under the gc lock); return their chain ids.

        With *images* (each image's diff_ids, bottom first) exactly the layer
        chains of those images are kept; without, a layer is kept when its
        diff_id is in *keep_diff_ids* and its parent is kept. Layers of
        mounted containers are always kept.
        """
        keep_chains = {c for ids in images for c in chain_ids(ids)} if images is not None else None
        used = self.in_use()
        removed: list[str] = []
        for driver_dir in self._driver_dirs():
            metas = {}
            for entry in os.scandir(driver_dir):
                meta = read_json(Path(entry.path) / "layer.json") or {}
                metas["sha256:" + entry.name] = meta
            kept: dict[str, bool] = {}
            for chain in metas:
                if not self._keep(chain, metas, keep_diff_ids, keep_chains, used, kept):
                    self._remove_layer(driver_dir / _hex(chain), chain)
                    removed.append(chain)
        self._remove_stale(None)
        drivers.remove_dead_probes(self.paths, _alive)
        return removed

    def _keep(self, chain: str, metas: dict, keep_ids: set[str], keep_chains: set[str] | None,
              used: set[str], memo: dict[str, bool]) -> bool:
        if chain in memo:
            return memo[chain]
        memo[chain] = False  # guards against a (corrupt) parent cycle
        meta = metas.get(chain) or {}
        if chain in used:
            result = True
        elif keep_chains is not None:
            result = chain in keep_chains
        elif not meta.get("diff_id") or meta["diff_id"] not in keep_ids:
            result = False
        else:
            parent = meta.get("parent")
            result = parent is None or self._keep(parent, metas, keep_ids, keep_chains, used, memo)
        memo[chain] = result
        return result

    def _remove_layer(self, directory: Path, chain: str) -> None:
        with locked(self._lock_path(chain), timeout=LAYER_LOCK_TIMEOUT):
            trash = self.paths.tmp / f"layer-{os.getpid()}-gc-{_hex(chain)}"
            self.paths.tmp.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(directory, trash)  # gone at once for readers; deleting takes longer
            except FileNotFoundError:
                return
            remove_tree(trash)

    def _remove_stale(self, chain: str | None) -> None:
        """Remove work dirs of *chain* (we hold its lock) and of processes that died."""
        if chain is not None and self._dir(chain).is_dir() and self.get(chain) is None:
            remove_tree(self._dir(chain))  # a layer directory without layer.json is not ours to trust
        if not self.paths.tmp.is_dir():
            return
        suffix = _hex(chain) if chain else None
        for entry in os.scandir(self.paths.tmp):
            parts = entry.name.split("-")
            if parts[0] != "layer" or len(parts) < 3 or not parts[1].isdigit():
                continue
            if (suffix is not None and entry.name.endswith(suffix)) or not _alive(int(parts[1])):
                remove_tree(Path(entry.path))

    # -- paths ---------------------------------------------------------------------

    def _dir(self, chain: str) -> Path:
        return self.paths.layers / self.driver.name / _hex(chain)

    def _driver_dirs(self) -> list[Path]:
        return [d for d in (self.paths.layers / name for name in drivers.DRIVERS) if d.is_dir()]

    def _lock_path(self, chain: str) -> Path:
        return self.paths.locks / "layers" / _hex(chain)

    def _mount_record(self, container_dir: Path) -> Path:
        key = _hex(sha256_digest(str(container_dir).encode()))[:32]
        return self.paths.layers / "mounts" / f"{key}.json"

    def _empty(self) -> Path:
        empty = self.paths.layers / "empty"
        empty.mkdir(parents=True, exist_ok=True)
        return empty


def _hex(chain: str) -> str:
    return chain.split(":", 1)[1]


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__ = ["Layer", "LayerStore", "chain_id", "chain_ids"]
