"""Running a Dockerfile: stages in order, each step cached or done, then the image stored and tagged.

A stage's state is an image config plus its layer blobs (`cache.State`);
each step makes a new state: metadata steps change only the config (a
history entry with ``empty_layer``), RUN, COPY, ADD and a WORKDIR that
must create its directory add a layer. Only the final state becomes an
image, so a failed build tags nothing. Metadata instructions are applied
with `images.changes.apply_changes` (the same code as ``--change``);
variables are expanded first with the Dockerfile's rules (`words.py`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from intermodal.errors import (
    BuildFailed,
    DockerfileError,
    ImageNotFound,
    InvalidArgument,
    KernelError,
    RegistryError,
    RuntimeFailure,
)
from intermodal.images import mediatypes as mt
from intermodal.images import reference as refs
from intermodal.images.build import steps
from intermodal.images.build.cache import BuildCache, State, key
from intermodal.images.build.context import BuildContext, FileHashes
from intermodal.images.build.dockerfile import Dockerfile, Instruction, Stage, json_list, parse
from intermodal.images.build.words import SubstitutionError, expand, expand_words, split_words
from intermodal.images.changes import DEFAULT_SHELL, apply_changes
from intermodal.images.manifest import Descriptor, canonical_json, host_platform

if TYPE_CHECKING:
    from intermodal.images.manager import ImageManager
    from intermodal.images.store import ImageRecord

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Build args Docker knows without an ARG line (proxies): never reported as unused
PREDEFINED_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
                   "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")
NOP = "/bin/sh -c #(nop) "


@dataclass
class BuildOptions:
    context: str
    dockerfile: str | None = None  # -f; default: Containerfile or Dockerfile in the context
    tags: tuple[str, ...] = ()
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    pull: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    quiet: bool = False
    output: TextIO | None = None  # progress lines and RUN output; default stdout
    tls_verify: bool = True  # for pulling base images (False: a plain-http or self-signed registry)


@dataclass
class Scope:
    """One stage while it is built."""

    stage: Stage
    state: State
    args: dict[str, str | None] = field(default_factory=dict)  # ARGs declared in the stage
    cmd_set: bool = False

    @property
    def section(self) -> dict[str, Any]:
        return self.state.config.get("config") or {}

    @property
    def shell(self) -> list[str]:
        return list(self.section.get("Shell") or DEFAULT_SHELL)

    def env(self) -> dict[str, str]:
        """What ``$VAR`` sees: the stage's ARGs, overridden by ENV (Docker's order)."""
        out = {k: v for k, v in self.args.items() if v is not None}
        for entry in self.section.get("Env") or ():
            name, _, value = entry.partition("=")
            out[name] = value
        return out

    def run_args(self) -> list[tuple[str, str]]:
        """ARGs that RUN gets as environment: those with a value that no ENV shadows."""
        env_names = {e.partition("=")[0] for e in self.section.get("Env") or ()}
        return [(k, v) for k, v in self.args.items() if v is not None and k not in env_names]


class Builder:
    def __init__(self, manager: ImageManager, options: BuildOptions) -> None:
        self.images = manager
        self.options = options
        self.out = options.output or sys.stdout
        self.context = BuildContext(options.context)
        path = self.context.dockerfile(options.dockerfile)
        self.file = path.name
        self.df: Dockerfile = parse(path.read_text(encoding="utf-8"), path.name)
        self.escape = self.df.escape
        paths = manager.engine.paths
        self.cache = BuildCache(paths.root, manager.store.blobs)
        self.hashes = FileHashes(paths.root / "build-cache" / "file-digests.json")
        self.meta_args: dict[str, str] = {}
        self.used_args: set[str] = set()
        self.results: dict[int, State] = {}
        self.step = 0
        self.total = 0

    # -- the whole build ---------------------------------------------------------------

    def build(self) -> ImageRecord:
        tags = [_tag(t) for t in self.options.tags]
        self._global_args()
        target = self._target()
        order = sorted(self._needed(target.index))
        self.total = sum(1 + len(self.df.stages[i].instructions) for i in order)
        with self.images.store.gc_guard():
            for index in order:
                self.results[index] = self._stage(self.df.stages[index])
            record = self._commit(self.results[target.index], tags)
        self.hashes.save()
        unused = sorted(set(self.options.build_args) - self.used_args - set(PREDEFINED_ARGS))
        if unused:
            self._say(f"[Warning] one or more build-args {unused} were not consumed")
        return record

    def _global_args(self) -> None:
        for ins in self.df.global_args:
            for name, default in self._arg_pairs(ins, self.meta_args):
                value = self.options.build_args.get(name, default)
                if name in self.options.build_args:
                    self.used_args.add(name)
                if value is not None:
                    self.meta_args[name] = value

    def _target(self) -> Stage:
        if self.options.target is None:
            return self.df.stages[-1]
        stage = self.df.stage(self.options.target)
        if stage is None:
            names = [s.name for s in self.df.stages if s.name]
            raise InvalidArgument(f"target stage {self.options.target!r} not found in {self.file}; "
                                  f"stages: {', '.join(names) or 'none named (use FROM IMAGE AS NAME)'}")
        return stage

    def _needed(self, index: int) -> set[int]:
        """The target and the stages it builds on or copies from (others are skipped, as buildkit does)."""
        needed: set[int] = set()
        todo = [index]
        while todo:
            i = todo.pop()
            if i in needed:
                continue
            needed.add(i)
            stage = self.df.stages[i]
            refs_ = [self._expand_meta(stage.base, stage.line)]
            refs_ += [ins.flag("from") or "" for ins in stage.instructions if ins.keyword == "COPY"]
            for ref in refs_:
                other = self.df.stage(ref) if ref else None
                if other is not None and other.index < i:
                    todo.append(other.index)
        return needed

    def _expand_meta(self, text: str, line: int) -> str:
        try:
            return expand(text, self.meta_args, self.escape)
        except SubstitutionError as err:
            raise DockerfileError(f"{self.file}:{line}: {err}") from None

    # -- one stage -----------------------------------------------------------------------

    def _stage(self, stage: Stage) -> State:
        base = self._expand_meta(stage.base, stage.line)
        self._announce(f"FROM {base}" + (f" AS {stage.name}" if stage.name else ""))
        scope = Scope(stage, self._base_state(base, stage))
        triggers = self._triggers(scope, stage, base)
        if triggers:
            self._say(f"--> Executing {len(triggers)} build trigger(s) of {base}")
        for ins in triggers:
            try:
                self._dispatch(scope, ins)
            except SubstitutionError as err:
                raise ins.error(str(err), self.file) from None
        for ins in stage.instructions:
            self._announce(ins.original)
            try:
                self._dispatch(scope, ins)
            except SubstitutionError as err:
                raise ins.error(str(err), self.file) from None
        return scope.state

    def _base_state(self, base: str, stage: Stage) -> State:
        if base.lower() == "scratch":
            platform = host_platform()
            config = {"architecture": platform["architecture"], "os": platform["os"],
                      "config": {"Env": [DEFAULT_PATH]}, "rootfs": {"type": "layers", "diff_ids": []}, "history": []}
            if platform.get("variant"):
                config["variant"] = platform["variant"]
            return State(config)
        other = self.df.stage(base)
        if other is not None and other.index < stage.index:
            return self.results[other.index].copy()
        record = self._image(base, stage.line)
        drop = ("container", "container_config")  # the base's build container says nothing about ours
        config = {k: v for k, v in self.images.store.config(record).items() if k not in drop}
        config.setdefault("config", {})
        layers = [oci_layer(d.to_json()) for d in self.images.store.manifest(record).layers]
        return State(config, layers)

    def _triggers(self, scope: Scope, stage: Stage, base: str) -> list[Instruction]:
        """The base image's ONBUILD instructions: taken out of the config, run first (as Docker does)."""
        other = self.df.stage(base)
        if other is not None and other.index < stage.index:
            return []  # FROM an earlier stage of this file: its ONBUILD is for images built from the result
        triggers = scope.section.get("OnBuild") or []
        if not triggers:
            return []
        scope.state = scope.state.copy()
        scope.state.config["config"].pop("OnBuild")
        parsed = parse("FROM scratch\n" + "\n".join(triggers), f"{self.file} (ONBUILD of {base})")
        return [replace(ins, line=stage.line) for ins in parsed.stages[0].instructions]

    def _image(self, name: str, line: int) -> ImageRecord:
        if not self.options.pull:
            with contextlib.suppress(ImageNotFound):
                return self.images.get(name)
        try:
            return self.images.pull(name, tls_verify=self.options.tls_verify)
        except ImageNotFound:
            raise DockerfileError(f"{self.file}:{line}: FROM {name}: no such image here or in its registry; "
                                  "pull or load it first, or fix the name") from None
        except RegistryError as err:
            raise DockerfileError(f"{self.file}:{line}: FROM {name}: the image is not here and pulling it "
                                  f"failed ({err}); load it with `imod load`, or fix the name") from None

    def _dispatch(self, scope: Scope, ins: Instruction) -> None:
        handler = {
            "RUN": self._run, "COPY": self._copy, "ADD": self._copy, "WORKDIR": self._workdir, "ENV": self._env,
            "LABEL": self._label, "ARG": self._arg, "SHELL": self._shell, "MAINTAINER": self._maintainer,
        }.get(ins.keyword, self._change)
        handler(scope, ins)

    # -- the cache -------------------------------------------------------------------------

    def _cached(self, scope: Scope, cache_key: str) -> bool:
        if self.options.no_cache:
            return False
        state = self.cache.get(cache_key)
        if state is None:
            return False
        scope.state = state
        self._say(f"--> Using cache {state.id.split(':', 1)[1]}")
        self._say(f"--> {state.id.split(':', 1)[1][:12]}")
        return True

    def _done(self, scope: Scope, cache_key: str, state: State) -> None:
        self.cache.put(cache_key, state)
        scope.state = state
        self._say(f"--> {state.id.split(':', 1)[1][:12]}")

    def _key(self, scope: Scope, ins: Instruction, content: str = "") -> str:
        text = ins.original + "".join(f"\n{h.content}{h.name}" for h in ins.heredocs)
        return key(scope.state, text, {k: v for k, v in scope.run_args()}, content)

    # -- metadata steps --------------------------------------------------------------------

    def _meta(self, scope: Scope, ins: Instruction, section: dict[str, Any], created_by: str | None = None,
              extra: dict[str, Any] | None = None) -> None:
        cache_key = self._key(scope, ins)
        if self._cached(scope, cache_key):
            return
        state = scope.state.copy()
        state.config["config"] = section
        state.config.update(extra or {})
        _history(state, created_by or NOP + " " + ins.original, empty=True)
        self._done(scope, cache_key, state)

    def _apply(self, scope: Scope, ins: Instruction, text: str) -> dict[str, Any]:
        try:
            return apply_changes(scope.section, [text])
        except InvalidArgument as err:
            why = str(err).removeprefix("invalid --change ").split(" (example:")[0]
            raise ins.error(why, self.file) from None

    def _change(self, scope: Scope, ins: Instruction) -> None:
        """CMD ENTRYPOINT HEALTHCHECK ONBUILD as written; EXPOSE STOPSIGNAL USER VOLUME expanded first."""
        kw = ins.keyword
        if kw in ("CMD", "ENTRYPOINT", "HEALTHCHECK", "ONBUILD"):
            text = ins.original
            if kw in ("CMD", "ENTRYPOINT") and ins.json_args is None and scope.shell != DEFAULT_SHELL:
                text = f"{kw} {json.dumps([*scope.shell, ins.args])}"
            section = self._apply(scope, ins, text)
            if kw == "ENTRYPOINT" and scope.cmd_set and "Cmd" in scope.section:
                section["Cmd"] = scope.section["Cmd"]  # a CMD of this stage survives a later ENTRYPOINT
            scope.cmd_set = scope.cmd_set or kw == "CMD"
        else:
            env = scope.env()
            listed = json_list(ins.args) if kw == "VOLUME" else None
            words = [expand(w, env, self.escape) for w in listed] if listed is not None else (
                expand_words(ins.args, env, self.escape) if kw in ("EXPOSE", "VOLUME")
                else [expand(ins.args, env, self.escape)])
            section = self._apply(scope, ins, f"{kw} " + " ".join(_quote(w) for w in words))
        self._meta(scope, ins, section)

    def _pairs(self, scope: Scope, ins: Instruction) -> list[tuple[str, str]]:
        env = scope.env()
        raw = split_words(ins.args, self.escape)
        if "=" not in raw[0]:
            value = ins.args[len(raw[0]):].strip()
            if not value:
                raise ins.error(f"{ins.keyword} {raw[0]} needs a value ({ins.keyword} {raw[0]}=VALUE)", self.file)
            return [(expand(raw[0], env, self.escape), expand(value, env, self.escape))]
        out = []
        for word in raw:
            if "=" not in word:
                raise ins.error(f"expects NAME=VALUE pairs, {word!r} has no '='", self.file)
            name, _, value = word.partition("=")
            name = expand(name, env, self.escape)
            if not name:
                raise ins.error(f"empty name in {word!r}", self.file)
            out.append((name, expand(value, env, self.escape)))
        return out

    def _env(self, scope: Scope, ins: Instruction) -> None:
        section = dict(scope.section)
        env = list(section.get("Env") or [])
        for name, value in self._pairs(scope, ins):  # all pairs see the environment before the line
            entry = f"{name}={value}"
            for i, existing in enumerate(env):
                if existing.partition("=")[0] == name:
                    env[i] = entry  # a replaced variable keeps its place, as in Docker
                    break
            else:
                env.append(entry)
        section["Env"] = env
        self._meta(scope, ins, section)

    def _label(self, scope: Scope, ins: Instruction) -> None:
        section = dict(scope.section)
        section["Labels"] = {**(section.get("Labels") or {}), **dict(self._pairs(scope, ins))}
        self._meta(scope, ins, section)

    def _arg(self, scope: Scope, ins: Instruction) -> None:
        for name, default in self._arg_pairs(ins, scope.env()):
            if name in self.options.build_args:
                self.used_args.add(name)
                scope.args[name] = self.options.build_args[name]
            elif default is not None:
                scope.args[name] = default
            else:
                scope.args[name] = self.meta_args.get(name)  # `ARG NAME` after FROM brings in the global one
        self._meta(scope, ins, dict(scope.section))

    def _arg_pairs(self, ins: Instruction, env: dict[str, str]) -> list[tuple[str, str | None]]:
        out: list[tuple[str, str | None]] = []
        for word in split_words(ins.args, self.escape):
            name, eq, default = word.partition("=")
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ins.error(f"invalid ARG name {name!r}", self.file)
            out.append((name, expand(default, env, self.escape) if eq else None))
        return out

    def _shell(self, scope: Scope, ins: Instruction) -> None:
        shell = ins.json_args
        if not shell:
            raise ins.error('SHELL needs the JSON form, e.g. SHELL ["/bin/sh", "-c"]', self.file)
        self._meta(scope, ins, {**scope.section, "Shell": shell})

    def _maintainer(self, scope: Scope, ins: Instruction) -> None:
        self._meta(scope, ins, dict(scope.section), extra={"author": ins.args})

    # -- filesystem steps --------------------------------------------------------------------

    def _run(self, scope: Scope, ins: Instruction) -> None:
        argv = ins.json_args
        if argv is None:
            script = ins.args
            if ins.heredocs:
                if len(ins.heredocs) == 1 and re.fullmatch(r"<<-?\s*[\"']?\w+[\"']?", script.strip()):
                    script = ins.heredocs[0].content  # RUN <<EOF: the heredoc is the script
                else:
                    script += "\n" + "".join(f"{h.content}{h.name}\n" for h in ins.heredocs)
            argv = [*scope.shell, script]
        if not argv:
            raise ins.error("RUN needs a command", self.file)
        cache_key = self._key(scope, ins)
        if self._cached(scope, cache_key):
            return
        run_args = scope.run_args()
        prefix = f"|{len(run_args)} " + " ".join(f"{k}={v}" for k, v in run_args) + " " if run_args else ""
        with steps.mounted(self.images, scope.state, "run") as (directory, rootfs):
            workdir = steps.resolve_in_root(rootfs, scope.section.get("WorkingDir") or "/")
            os.makedirs(rootfs / workdir.lstrip("/"), mode=0o755, exist_ok=True)
            try:
                result, created = steps.run_container(self.images, rootfs, scope.state.config, argv,
                                                      run_args + self._proxies(scope, run_args), self._emit)
            except (RuntimeFailure, KernelError, InvalidArgument) as err:
                raise BuildFailed(f'{self.file}:{ins.line}: error building at STEP "{ins.original}": {err}; '
                                  "nothing was tagged", ins.original) from None
            if result.code != 0:
                tail = result.output.decode(errors="replace")[-2000:] if self.options.quiet else ""
                raise BuildFailed(f'{self.file}:{ins.line}: error building at STEP "{ins.original}": the command '
                                  f"exited with status {result.code}; nothing was tagged"
                                  + (f"\n{tail}" if tail else ""), ins.original, result.code)
            descriptor, diff_id = steps.add_layer(self.images, scope.state,
                                                  self._diff_writer(scope.state, directory, rootfs, created))
        self._done(scope, cache_key, with_layer(scope.state, descriptor, diff_id, prefix + " ".join(argv)))

    def _copy(self, scope: Scope, ins: Instruction) -> None:
        from intermodal.images.build.copying import copy_step

        copy_step(self, scope, ins)

    def _proxies(self, scope: Scope, run_args: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Proxy build args reach RUN without an ARG line, but stay out of history and the cache (Docker)."""
        taken = {k for k, _ in run_args} | {e.partition("=")[0] for e in scope.section.get("Env") or ()}
        out = [(k, self.options.build_args[k]) for k in PREDEFINED_ARGS
               if k in self.options.build_args and k not in taken]
        self.used_args.update(k for k, _ in out)
        return out

    def _diff_writer(self, state: State, directory: Path, rootfs: Path, created: set[str]):
        from intermodal.images.build import diff

        upper = directory / "upper"
        if upper.is_dir():
            return lambda out: diff.write_upper(upper, out, steps.make_skip(created, upper))
        lower = self.images.store.layers.layers(state.diff_ids)[-1].path if state.diff_ids else None
        return lambda out: diff.write_compare(lower, rootfs, out, steps.make_skip(created, rootfs))

    def _workdir(self, scope: Scope, ins: Instruction) -> None:
        section = self._apply(scope, ins, "WORKDIR " + _quote(expand(ins.args, scope.env(), self.escape)))
        created_by = NOP + "WORKDIR " + section["WorkingDir"]
        cache_key = self._key(scope, ins)
        if self._cached(scope, cache_key):
            return
        with steps.viewed(self.images, scope.state, "workdir") as rootfs:
            real = steps.resolve_in_root(rootfs, section["WorkingDir"])
            if os.path.isdir(rootfs / real.lstrip("/")):
                state = scope.state.copy()
                state.config["config"] = section
                _history(state, created_by, empty=True)
                self._done(scope, cache_key, state)
                return

            def write(out) -> None:
                tar = steps.LayerTar(out, rootfs, None, None)
                tar.parents(real.rstrip("/") + "/x")
                tar.close()

            descriptor, diff_id = steps.add_layer(self.images, scope.state, write)
        state = with_layer(scope.state, descriptor, diff_id, created_by)
        state.config["config"] = section
        self._done(scope, cache_key, state)

    # -- the image ----------------------------------------------------------------------------

    def _commit(self, state: State, tags: list[refs.Reference]) -> ImageRecord:
        config = json.loads(json.dumps(state.config))
        if self.options.labels:
            section = config.setdefault("config", {})
            section["Labels"] = {**(section.get("Labels") or {}), **self.options.labels}
        if "created" not in config:
            config["created"] = _now()
        store = self.images.store
        config_bytes = canonical_json(config)
        digest = store.blobs.put(config_bytes)
        manifest = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": Descriptor(mt.OCI_CONFIG, digest, len(config_bytes)).to_json(),
            "layers": state.layers,
        }
        for tag in tags:
            self._say(f"COMMIT {tag}")
        record = store.add(canonical_json(manifest), mt.OCI_MANIFEST, tags=tags)
        self._say(f"--> {record.short_id}")
        for tag in tags:
            self._say(f"Successfully tagged {tag}")
        return record

    # -- output --------------------------------------------------------------------------------

    def _announce(self, text: str) -> None:
        self.step += 1
        self._say(f"STEP {self.step}/{self.total}: {text}")

    def _say(self, line: str) -> None:
        if not self.options.quiet:
            self.out.write(line + "\n")
            self.out.flush()

    def _emit(self, chunk: bytes) -> None:
        if not self.options.quiet:
            self.out.write(chunk.decode(errors="replace"))
            self.out.flush()


def _quote(value: str) -> str:
    """A literal for `apply_changes`, which expands again: single quotes keep it as it is."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _history(state: State, created_by: str, *, empty: bool) -> None:
    now = _now()
    entry: dict[str, Any] = {"created": now, "created_by": created_by}
    if empty:
        entry["empty_layer"] = True
    state.config.setdefault("history", []).append(entry)
    state.config["created"] = now


def with_layer(state: State, descriptor: dict[str, Any], diff_id: str, created_by: str) -> State:
    new = state.copy()
    new.config.setdefault("rootfs", {"type": "layers", "diff_ids": []})["diff_ids"].append(diff_id)
    new.layers.append(descriptor)
    _history(new, created_by, empty=False)
    return new


def oci_layer(descriptor: dict[str, Any]) -> dict[str, Any]:
    """The base's layer descriptor as an OCI one (the bytes are the same: only the name differs)."""
    out = dict(descriptor)
    if out.get("mediaType") == mt.DOCKER_LAYER_GZIP:
        out["mediaType"] = mt.OCI_LAYER_GZIP
    return out


def _tag(text: str) -> refs.Reference:
    ref = refs.parse(text)
    if ref.digest:
        raise InvalidArgument(f"cannot tag a build as {text!r}: give NAME[:TAG], not a digest")
    return ref.with_tag(ref.tag or refs.DEFAULT_TAG)


def build(manager: ImageManager, options: BuildOptions) -> ImageRecord:
    """Build the image; raises DockerfileError (with the line), BuildFailed (a RUN failed), InvalidArgument."""
    return Builder(manager, options).build()


__all__ = ["BuildOptions", "Builder", "build"]
