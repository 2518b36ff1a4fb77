"""`imod commit`: a container's changes become a new layer on its image, and a new image.

The changes are the overlay's upper directory, written as an OCI layer tar:
overlayfs marks a deleted file with a 0/0 character device and a directory
whose lower content is hidden with the xattr ``trusted.overlay.opaque=y``
(Documentation/filesystems/overlayfs.rst); the OCI layer format says the
same with ``.wh.NAME`` and ``.wh..wh..opq`` entries (image-spec layer.md).
Mount points the runtime created (an empty /etc/hosts, /proc, ...) are left
out, as they are not the container's content.

The new image's config is the container's (as Docker commits it: the image
config with the container's command, entrypoint, env, workdir, user and
labels), then the `--change` instructions; its history gains one entry.
A running container is paused while its changes are read, as Docker does.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from intermodal.containers.spec import ContainerSpec
from intermodal.errors import IncorrectState, InvalidArgument, KernelError

if TYPE_CHECKING:
    from intermodal.containers.manager import ContainerManager
    from intermodal.images.store import ImageRecord

OPAQUE_XATTR = "trusted.overlay.opaque"


def commit_container(manager: ContainerManager, name: str, reference: str | None, *, changes: list[str],
                     message: str = "", author: str = "", pause: bool = True) -> ImageRecord:
    from intermodal.containers import status as st
    from intermodal.images import reference as refs
    from intermodal.images.changes import apply_changes

    check_reference(reference)
    cid = manager.store.resolve(name)
    record = manager.store.read_record(cid)
    directory = manager.store.dir(cid)
    upper = directory / "upper"
    if not upper.is_dir():
        raise IncorrectState(f"container {record['Name']}", "on a storage driver without an upper directory",
                             "on overlay (commit reads the overlay's changes)")
    tags = [refs.parse(reference)] if reference else []
    images = manager.engine.images
    base = images.store.get(record["Image"])
    base_config = images.store.config(base)
    config_section = apply_changes(_container_config(record, base_config), changes)
    state = st.effective(manager.store.read_state(cid))
    runtime = manager._runtime(record)
    paused = pause and state.get("Status") == "running"
    if paused:
        runtime.pause(cid)
    try:
        return _commit(manager, cid, directory, upper, base, base_config, config_section, tags, message, author)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise KernelError("commit", manager.engine.paths.root, err.errno,
                              "no space left for the new layer; nothing was committed: free space under the "
                              "engine root (`imod image prune`, `imod container prune`) and retry") from None
        raise KernelError.from_oserror("commit", err) from None
    finally:
        if paused:
            runtime.resume(cid)


def _commit(manager: ContainerManager, cid: str, directory: Path, upper: Path, base: ImageRecord,
            base_config: dict[str, Any], config_section: dict[str, Any], tags: list[Any], message: str,
            author: str) -> ImageRecord:
    from intermodal.storage.layers import chain_ids

    images = manager.engine.images
    with images.store.gc_guard():
        spool = manager.engine.paths.tmp / f"commit-{cid[:12]}-{os.getpid()}.tar"
        spool.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(spool, "w+b") as f:
                write_layer(upper, f, _mount_points(directory))
                f.seek(0)
                parent = chain_ids(list(base.diff_ids))[-1] if base.diff_ids else None
                layer, diff_id = images.store.layers.create_from_tar(f, parent)
        finally:
            spool.unlink(missing_ok=True)
        return _store_image(images, base, base_config, config_section, layer, diff_id, tags, message, author)


def _container_config(record: dict[str, Any], base_config: dict[str, Any]) -> dict[str, Any]:
    """The image's config with what the container was created with laid over it."""
    spec = ContainerSpec.from_json(record["Spec"])
    config = dict(base_config.get("config") or {})
    if spec.entrypoint is not None:
        config["Entrypoint"] = list(spec.entrypoint) or None
        config["Cmd"] = None
    if spec.command is not None:
        config["Cmd"] = list(spec.command)
    if spec.env:
        env = {e.partition("=")[0]: e for e in config.get("Env") or []}
        env.update({k: f"{k}={v}" for k, v in spec.env})
        config["Env"] = list(env.values())
    if spec.workdir:
        config["WorkingDir"] = spec.workdir
    if spec.user is not None:
        config["User"] = spec.user
    if spec.labels:
        config["Labels"] = {**(config.get("Labels") or {}), **dict(spec.labels)}
    return {k: v for k, v in config.items() if v is not None}


def _mount_points(directory: Path) -> set[str]:
    """Container paths the runtime mounts over (from the bundle): their empty mount points are not content."""
    import json

    bundle = json.loads((directory / "bundle" / "config.json").read_bytes())
    return {m["destination"].rstrip("/") for m in bundle.get("mounts", ())}


def write_layer(upper: Path, out: Any, skip: set[str]) -> None:
    """The upper directory as an OCI layer tar (whiteouts converted), entries sorted for a stable digest."""
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(upper):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, upper)
            for name in sorted(dirnames + filenames):
                path = os.path.join(dirpath, name)
                rel = os.path.normpath(os.path.join(rel_dir, name))
                st = os.lstat(path)
                if "/" + rel in skip and _empty(path, st):
                    continue
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    _add_empty(tar, os.path.join(os.path.dirname(rel), ".wh." + name), st)
                    continue
                tar.add(path, arcname=rel, recursive=False)
                if stat.S_ISDIR(st.st_mode) and _opaque(path):
                    _add_empty(tar, os.path.join(rel, ".wh..wh..opq"), st)


def _empty(path: str, st: os.stat_result) -> bool:
    if stat.S_ISDIR(st.st_mode):
        return not os.listdir(path)
    return stat.S_ISREG(st.st_mode) and st.st_size == 0


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError as err:
        if err.errno in (errno.ENODATA, errno.ENOTSUP, errno.EPERM):
            return False
        raise


def _add_empty(tar: tarfile.TarFile, name: str, st: os.stat_result) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = int(st.st_mtime)
    tar.addfile(info)


def _store_image(images: Any, base: ImageRecord, base_config: dict[str, Any], config_section: dict[str, Any],
                 layer: Any, diff_id: str, tags: list[Any], message: str, author: str) -> ImageRecord:
    from intermodal.images import mediatypes as mt
    from intermodal.images.manifest import Descriptor, canonical_json

    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    config = {k: v for k, v in base_config.items() if k not in ("config", "rootfs", "history", "created")}
    config.update({
        "created": created,
        "config": config_section,
        "rootfs": {"type": "layers", "diff_ids": [*base.diff_ids, diff_id]},
        "history": [*(base_config.get("history") or []),
                    {"created": created, "created_by": "imod commit", **({"comment": message} if message else {}),
                     **({"author": author} if author else {})}],
    })
    if author:
        config["author"] = author
    if message:
        config["comment"] = message
    manifest_type = base.media_type if base.media_type in mt.MANIFESTS else mt.OCI_MANIFEST
    oci = manifest_type == mt.OCI_MANIFEST
    config_bytes = canonical_json(config)
    config_digest = images.store.blobs.put(config_bytes)
    base_layers = list(images.store.manifest(base).layers)
    new_layer = Descriptor(mt.OCI_LAYER_GZIP if oci else mt.DOCKER_LAYER_GZIP, layer.digest, layer.size)
    manifest = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": Descriptor(mt.OCI_CONFIG if oci else mt.DOCKER_CONFIG, config_digest, len(config_bytes)).to_json(),
        "layers": [d.to_json() for d in base_layers] + [new_layer.to_json()],
    }
    return images.store.add(canonical_json(manifest), manifest_type, tags=tags)


def check_reference(reference: str | None) -> None:
    if reference and "@" in reference:
        raise InvalidArgument(f"cannot commit as {reference!r}: give REPOSITORY[:TAG], not a digest")
