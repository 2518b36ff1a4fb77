"""Images: present (pull, load, import, build, or already local), tagged, saved, pushed; or absent.

An image is identified by its id (the config digest). Every source is judged
by the id it would give: a forced pull, load or import that yields the id
the name already has changes nothing, and the prediction (check mode,
`test=True`) reads the same id without fetching layers: the registry's
manifest for a pull, the archive's manifest for a load.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from intermodal.declare.plan import Difference, Plan
from intermodal.errors import ImageNotFound, IntermodalError, InvalidArgument

if TYPE_CHECKING:
    from intermodal.engine import Engine

SOURCES = ("pull", "load", "import", "build", "local")
UNKNOWN = "unknown"  # the source's id cannot be known before running it


@dataclass(frozen=True)
class Declared:
    name: str  # the full reference (tag applied), or an id
    state: str = "present"
    source: str | None = None
    force_source: bool = False
    force_tag: bool = False
    force_absent: bool = False
    load_path: str | None = None
    archive_path: str | None = None
    repository: str | None = None
    push: bool = False
    pull_options: Mapping[str, Any] = field(default_factory=dict)
    build: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Current:
    """Ids as the engine (and the source, read-only) have them now; None: absent."""

    image_id: str | None
    repository_id: str | None = None
    source_id: str | None = None  # the id the source would give; UNKNOWN when it cannot be read
    archive_id: str | None = None  # the id in archive_path, if that file exists
    pushed_id: str | None = None  # the id the registry has under the push target; UNKNOWN if it cannot tell


def declare(options: Mapping[str, Any]) -> Declared:
    from intermodal.images import reference as refs

    o = {k: v for k, v in options.items() if v is not None}
    name = o.get("name")
    if not name:
        raise InvalidArgument("name is required: give the image reference, e.g. busybox:1.36")
    if o.get("source") not in (None, *SOURCES):
        raise InvalidArgument(f"source {o['source']!r}: use one of {', '.join(SOURCES)}")
    if not refs.looks_like_id(name) and not name.startswith("sha256:"):
        explicit = refs.parse(name, default_tag=False)
        if explicit.tag is None and explicit.digest is None and o.get("tag"):
            explicit = explicit.with_tag(str(o["tag"]))
        name = str(refs.parse(str(explicit)))
    if o.get("source") in ("load", "import") and not o.get("load_path"):
        raise InvalidArgument(f"source {o['source']} needs load_path: the archive or rootfs tar to read")
    if o.get("source") == "build" and not (o.get("build") or {}).get("path"):
        raise InvalidArgument("source build needs build.path: the build context directory")
    repository = str(refs.parse(o["repository"])) if o.get("repository") else None
    pull_options = {"tls_verify": bool(o.get("validate_certs", True))}
    if o.get("platform"):
        pull_options["platform"] = o["platform"]
    return Declared(name, o.get("state", "present"), o.get("source"), bool(o.get("force_source")),
                    bool(o.get("force_tag")), bool(o.get("force_absent")), o.get("load_path"), o.get("archive_path"),
                    repository, bool(o.get("push")), pull_options, o.get("build"))


def plan(declared: Declared, current: Current) -> Plan:
    """Actions: pull, load, import, build, tag:<repository>, save:<path>, push:<reference>, remove."""
    if declared.state == "absent":
        return Plan(("remove",), (Difference("state", "absent", "present"),)) if current.image_id else Plan()
    actions: list[str] = []
    differences: list[Difference] = []
    warnings: list[str] = []
    image_id = current.image_id
    source = declared.source
    if image_id is None or declared.force_source:
        if source in (None, "local"):
            if image_id is None:
                raise ImageNotFound(f"image {declared.name} is not present and source is {source or 'not given'}; "
                                    "set source: pull, load, import or build")
        elif image_id is None or current.source_id != image_id:
            actions.append(source)
            differences.append(Difference("id", current.source_id, image_id))
            if current.source_id == UNKNOWN:
                warnings.append(f"the id {source} gives cannot be known beforehand; changed only if it moves")
            image_id = current.source_id if current.source_id != UNKNOWN else None
    target = declared.repository
    if target and (image_id is None or current.repository_id != image_id):
        if current.repository_id and not declared.force_tag and current.repository_id != image_id:
            raise InvalidArgument(f"{target} names another image ({current.repository_id}); set force_tag to move it")
        actions.append(f"tag:{target}")
        differences.append(Difference("repository", image_id, current.repository_id))
    if declared.archive_path and (image_id is None or current.archive_id != image_id):
        actions.append(f"save:{declared.archive_path}")
        differences.append(Difference("archive", image_id, current.archive_id))
    if declared.push and (image_id is None or current.pushed_id != image_id):
        actions.append(f"push:{target or declared.name}")
        differences.append(Difference("pushed", image_id, current.pushed_id))
        if current.pushed_id == UNKNOWN:
            warnings.append("the registry could not tell what it holds; the image is pushed again")
    return Plan(tuple(actions), tuple(differences), tuple(warnings))


def read(engine: Engine, declared: Declared) -> Current:
    """The ids, reading the source's id without fetching or storing anything."""
    image_id = _id(engine, declared.name)
    repository_id = _id(engine, declared.repository) if declared.repository else None
    source_id = None
    if declared.state == "present" and (image_id is None or declared.force_source):
        source_id = source_image_id(declared)
    archive_id = None
    if declared.archive_path and os.path.exists(declared.archive_path):
        ids = archive_ids(declared.archive_path)
        archive_id = ids[0] if len(ids) == 1 else UNKNOWN
    pushed_id = None
    if declared.push and declared.state == "present":
        pushed_id = _remote_or_none(declared.repository or declared.name, declared.pull_options)
    return Current(image_id, repository_id, source_id, archive_id, pushed_id)


def _remote_or_none(reference: str, options: Mapping[str, Any]) -> str | None:
    from intermodal.errors import ManifestUnknown

    try:
        return remote_image_id(reference, tls_verify=bool(options.get("tls_verify", True)),
                               platform=options.get("platform"))
    except ManifestUnknown:
        return None  # not pushed yet
    except IntermodalError:
        return UNKNOWN


def _id(engine: Engine, name: str) -> str | None:
    try:
        return engine.images.get(name).id
    except ImageNotFound:
        return None


def source_image_id(declared: Declared) -> str | None:
    """The id the source would give: from the archive's or the registry's manifest; UNKNOWN otherwise."""
    try:
        if declared.source == "load" and declared.load_path:
            ids = archive_ids(declared.load_path)
            return ids[0] if len(ids) == 1 else UNKNOWN
        if declared.source == "pull":
            return remote_image_id(declared.name, **dict(declared.pull_options))
    except IntermodalError:
        return UNKNOWN  # the real run reports the error itself
    return UNKNOWN


def archive_ids(path: str) -> list[str]:
    """Image ids in a docker-archive (manifest.json) or OCI archive, read without unpacking layers."""
    import json
    import tarfile

    from intermodal.errors import InvalidArchive

    if os.path.isdir(path):
        manifest_file = os.path.join(path, "manifest.json")
        if not os.path.exists(manifest_file):
            return [UNKNOWN]
        with open(manifest_file, "rb") as f:
            entries = json.load(f)
    else:
        try:
            with tarfile.open(path) as tar:
                member = tar.extractfile("manifest.json")
                if member is None:
                    return [UNKNOWN]
                entries = json.load(member)
        except KeyError:
            return [UNKNOWN]  # an OCI layout without manifest.json: its id needs the config blob
        except (tarfile.TarError, OSError, ValueError) as err:
            raise InvalidArchive(f"cannot read {path}: {err}; check that it is an image archive") from None
    ids = []
    for entry in entries:
        config = entry.get("Config", "")
        base = os.path.basename(config).removesuffix(".json")
        ids.append("sha256:" + base if len(base) == 64 else UNKNOWN)
    return ids


def remote_image_id(reference: str, *, tls_verify: bool = True, platform: str | None = None) -> str:
    """The config digest the registry's manifest names (two small GETs, no layers)."""
    from intermodal.images.pull import remote_id

    return remote_id(reference, tls_verify=tls_verify, platform=platform)


BUILD_KEYS = {"path": "context", "dockerfile": "dockerfile", "args": "build_args", "target": "target",
              "nocache": "no_cache", "pull": "pull", "labels": "labels"}


def build_options(declared: Declared) -> dict[str, Any]:
    """community.docker's `build` dict as the engine's build options. Raises InvalidArgument."""
    from intermodal.declare import normalise as norm

    given = {k: v for k, v in (declared.build or {}).items() if v is not None}
    unknown = sorted(set(given) - set(BUILD_KEYS))
    if unknown:
        raise InvalidArgument(f"build: {', '.join(unknown)} not supported; use {', '.join(BUILD_KEYS)}")
    if not given.get("path"):
        raise InvalidArgument("build: path is required: the build context directory")
    out = {BUILD_KEYS[k]: v for k, v in given.items()}
    if out.get("dockerfile") and not os.path.isabs(out["dockerfile"]):
        # docker_image: a dockerfile is relative to the build path (the engine's, like docker's -f, to the cwd)
        out["dockerfile"] = os.path.join(out["context"], out["dockerfile"])
    for key, what in (("build_args", "build.args"), ("labels", "build.labels")):
        if key in out:
            out[key] = norm.string_map(out[key], what)
    return out


def _build(engine: Engine, declared: Declared) -> None:
    import io

    build = getattr(engine.images, "build", None)
    if build is None:
        raise InvalidArgument("source build: this engine cannot build images yet; use pull, load or import")
    options = build_options(declared)
    context = options.pop("context")
    # The build's progress goes to a buffer: a module's stdout is its JSON result.
    build(context, tags=(declared.name,), output=io.StringIO(),
          tls_verify=bool(declared.pull_options.get("tls_verify", True)), **options)


def apply(engine: Engine, declared: Declared, the_plan: Plan) -> tuple[bool, str | None]:
    """Run the plan; returns (changed, the image id now). A source that gave the same id changed nothing."""
    images = engine.images
    before = _id(engine, declared.name)
    changed = False
    for action in the_plan.actions:
        kind, _, arg = action.partition(":")
        if kind == "remove":
            images.remove(declared.name, force=declared.force_absent)
            changed = True
        elif kind == "pull":
            images.pull(declared.name, **dict(declared.pull_options))
        elif kind == "load":
            records = images.load(declared.load_path)
            if declared.name not in {t for r in records for t in r.tags} and len(records) == 1:
                images.tag(records[0].id, declared.name)
        elif kind == "import":
            images.import_rootfs(declared.load_path, declared.name)
        elif kind == "build":
            _build(engine, declared)
        elif kind == "tag":
            images.tag(declared.name, arg)
            changed = True
        elif kind == "save":
            images.save([declared.name], arg)
            changed = True
        elif kind == "push":
            images.push(declared.name, None if arg == declared.name else arg,
                        tls_verify=bool(declared.pull_options.get("tls_verify", True)))
            changed = True
    after = _id(engine, declared.name)
    return changed or before != after, after
