"""COPY and ADD: sources from the context (or an earlier stage, or an image) as a new layer.

Docker's rules: a directory source copies its contents; several sources or
a wildcard need a directory destination ending in ``/``; a relative
destination is under WORKDIR; symlinks in the destination path are followed
inside the image; new files are owned by 0:0 unless ``--chown``; ADD unpacks
a local tar (plain, gzip, bzip2, xz) and refuses URLs. The layer tar is
written from the sources directly (`steps.LayerTar`), so each byte is read
once; the cache key holds the digest of everything copied.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
from pathlib import Path
from typing import TYPE_CHECKING

from intermodal.images.build import steps
from intermodal.images.build.cache import State
from intermodal.images.build.context import Source, content_digest, resolve_sources, walk
from intermodal.images.build.dockerfile import Instruction
from intermodal.images.build.executor import NOP, oci_layer, with_layer
from intermodal.images.build.words import expand, split_words

if TYPE_CHECKING:
    from intermodal.images.build.executor import Builder, Scope


def copy_step(b: Builder, scope: Scope, ins: Instruction) -> None:
    """COPY or ADD: the layer tar written straight from the sources, cached by their content."""
    env = scope.env()
    listed = ins.json_args
    # each word is expanded on its own: a variable's blanks do not make more sources
    words = [expand(w, env, b.escape) for w in (listed if listed is not None else split_words(ins.args, b.escape))]
    if len(words) < 2:
        raise ins.error(f"{ins.keyword} needs at least one source and a destination", b.file)
    names, dest = words[:-1], words[-1]
    docs = {f"<<{h.name}": h for h in ins.heredocs}
    names = [n for n in names if not _is_heredoc(n, docs)]
    heredocs = list(ins.heredocs)
    for name in names:
        if ins.keyword == "ADD" and re.match(r"^[a-z][a-z0-9+.-]*://|^git@", name):
            raise ins.error(f"ADD {name}: downloading from a URL is not supported by intermodal; download "
                            "the file into the build context and ADD or COPY it from there", b.file)
    chmod = ins.flag("chmod")
    try:
        mode = int(chmod, 8) if chmod else None
    except ValueError:
        raise ins.error(f"--chmod={chmod} is not an octal mode like 755", b.file) from None
    with contextlib.ExitStack() as stack:
        root, excluded = _copy_root(b, scope, ins, stack)
        sources = resolve_sources(root, names, lambda why: ins.error(why, b.file), excluded)
        descend = excluded is not None and b.context.has_exceptions
        plan = [(s, walk(s, excluded, descend)) for s in sources]
        digest = content_digest([(f"{s.rel}/{rel}", p, st) for s, entries in plan for rel, p, st in entries],
                                b.hashes if excluded is not None else None)
        digest += "".join(f"|{h.name}:{h.content}" for h in heredocs)
        cache_key = b._key(scope, ins, digest)
        if b._cached(scope, cache_key):
            return
        multi = len(plan) + len(heredocs) > 1 or any(s.wildcard for s in sources)
        rootfs = stack.enter_context(steps.viewed(b.images, scope.state, "copy"))
        owner = steps.resolve_owner(rootfs, expand(ins.flag("chown") or "", env, b.escape) or None)
        target = _destination(b, scope, ins, rootfs, dest, multi)

        def write(out) -> None:
            tar = steps.LayerTar(out, rootfs, owner, mode)
            try:
                _write_copy(b, tar, ins, plan, heredocs, target, env)
            finally:
                tar.close()

        descriptor, diff_id = steps.add_layer(b.images, scope.state, write)
    kind = "multi" if multi else ("dir" if plan and plan[0][0].path.is_dir() else "file")
    created_by = f"{NOP}{ins.keyword} {kind}:{digest.split(':', 1)[1][:64]} in {dest} "
    b._done(scope, cache_key, with_layer(scope.state, descriptor, diff_id, created_by))

def _copy_root(b: Builder, scope: Scope, ins: Instruction, stack: contextlib.ExitStack):
    """Where sources come from: the context (with its ignore rules), or --from's stage or image."""
    ref = ins.flag("from")
    if ref is None:
        return b.context.root, b.context.excluded
    ref = b._expand_meta(ref, ins.line)
    other = b.df.stage(ref)
    if other is not None:
        if other.index >= scope.stage.index:
            raise ins.error(f"--from={ref} names this or a later stage; copy only from earlier stages", b.file)
        state = b.results[other.index]
    else:
        record = b._image(ref, ins.line)
        state = State(b.images.store.config(record),
                      [oci_layer(d.to_json()) for d in b.images.store.manifest(record).layers])
    rootfs = stack.enter_context(steps.viewed(b.images, state, "from"))
    return rootfs, None

def _destination(b: Builder, scope: Scope, ins: Instruction, rootfs: Path, dest: str,
                 multi: bool) -> tuple[str, bool]:
    workdir = scope.section.get("WorkingDir") or "/"
    as_dir = dest.endswith("/") or dest in (".", "")
    path = dest if dest.startswith("/") else posixpath.join(workdir, dest)
    real = steps.resolve_in_root(rootfs, path)
    host = rootfs / real.lstrip("/")
    is_dir = as_dir or (os.path.isdir(host) and not os.path.islink(host))
    if multi and not is_dir:
        raise ins.error(f"with more than one source the destination must be a directory ending in /, "
                        f"not {dest!r}", b.file)
    return real, is_dir

def _write_copy(b: Builder, tar: steps.LayerTar, ins: Instruction, plan: list[tuple[Source, list]],
                heredocs: list, target: tuple[str, bool], env: dict[str, str]) -> None:
    dest, is_dir = target
    for source, entries in plan:
        if source.path.is_dir():  # a directory: its contents go into the destination
            tar.parents(dest.rstrip("/") + "/x")
            for rel, host, st in entries:
                tar.add(steps.CopyItem(posixpath.join(dest, rel), host, st))
            continue
        _, host, st = entries[0]
        if ins.keyword == "ADD" and steps.is_archive(host):
            tar.add_archive(host, dest)
            continue
        name = posixpath.join(dest, posixpath.basename(source.rel)) if is_dir else dest
        tar.add(steps.CopyItem(name, host, st))
    for doc in heredocs:
        text = expand(doc.content, env, b.escape) if doc.expand else doc.content
        name = posixpath.join(dest, doc.name) if is_dir else dest
        tar.add(steps.CopyItem(name, None, None, data=text.encode()))


def _is_heredoc(name: str, docs: dict) -> bool:
    return name.startswith("<<") and re.sub(r"[-\"']", "", name) in docs
