"""The build context: a directory, what `.dockerignore` / `.containerignore` leaves out, COPY sources.

Ignore patterns follow moby/patternmatcher: one pattern a line, ``#``
comments, each cleaned like a path with a leading ``/`` dropped; ``*`` and
``?`` do not cross ``/``, ``**`` matches any number of directories; a
pattern that matches a directory excludes everything under it; ``!``
re-includes, and the last matching pattern decides.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from intermodal.errors import DockerfileError, InvalidArgument

IGNORE_FILES = (".containerignore", ".dockerignore")
DOCKERFILES = ("Containerfile", "Dockerfile")
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern[str]


def parse_ignore(text: str) -> list[Pattern]:
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        line = posixpath.normpath(line)
        if len(line) > 1 and line.startswith("/"):
            line = line.lstrip("/") or "/"
        if line == ".":
            continue  # "." would exclude the whole context, which Docker ignores too
        patterns.append(Pattern(line, exclusion, _compile(line)))
    return patterns


def _compile(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                i += 2
                if i < len(pattern) and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= len(pattern) else "(.*/)?")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise InvalidArgument(f"ignore pattern {pattern!r} has an unclosed [: close it or escape it as \\[")
            body = pattern[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    out.append("$")
    return re.compile("".join(out), re.S)


def ignored(patterns: list[Pattern], rel: str) -> bool:
    """Whether the context-relative path *rel* is left out (it or a parent matched, last pattern wins)."""
    parents = rel.split("/")[:-1]
    result = False
    for p in patterns:
        match = bool(p.regex.match(rel))
        if not match and parents:
            match = any(p.regex.match("/".join(parents[:n])) for n in range(1, len(parents) + 1))
        if match:
            result = not p.exclusion
    return result


@dataclass(frozen=True)
class Source:
    """One COPY/ADD source: a path in the context (or in another stage's root) and how it was named."""

    path: Path  # on the host
    rel: str  # relative to the context (or the stage root)
    wildcard: bool


class BuildContext:
    def __init__(self, directory: str | os.PathLike) -> None:
        self.root = Path(os.path.realpath(directory))
        if not self.root.is_dir():
            raise InvalidArgument(f"build context {directory} is not a directory; give the directory to build from")
        self.patterns = self._read_ignore()

    def _read_ignore(self) -> list[Pattern]:
        for name in IGNORE_FILES:
            path = self.root / name
            if path.is_file():
                return parse_ignore(path.read_text(encoding="utf-8", errors="replace"))
        return []

    def dockerfile(self, name: str | None) -> Path:
        """The Dockerfile: -f as given (relative to the working directory), else Containerfile or Dockerfile.

        A ``<Dockerfile>.dockerignore`` beside it replaces the context's ignore file (as buildkit does).
        """
        path = self._find_dockerfile(name)
        for suffix in (".containerignore", ".dockerignore"):
            own = path.with_name(path.name + suffix)
            if own.is_file():
                self.patterns = parse_ignore(own.read_text(encoding="utf-8", errors="replace"))
                break
        return path

    def _find_dockerfile(self, name: str | None) -> Path:
        if name:
            path = Path(name)
            if not path.is_file():
                raise InvalidArgument(f"Dockerfile {name} not found; give an existing file with -f")
            return path
        for candidate in DOCKERFILES:
            if (self.root / candidate).is_file():
                return self.root / candidate
        raise InvalidArgument(f"no Containerfile or Dockerfile in {self.root}; add one or name it with -f")

    def excluded(self, rel: str) -> bool:
        return bool(self.patterns) and ignored(self.patterns, rel)

    @property
    def has_exceptions(self) -> bool:
        """Whether a ``!`` pattern can take back something inside an excluded directory."""
        return any(p.exclusion for p in self.patterns)

    def sources(self, names: list[str], ins_error) -> list[Source]:
        """Resolve COPY sources (globs allowed) inside the context; refuse escapes and misses."""
        return resolve_sources(self.root, names, ins_error, self.excluded)


def resolve_sources(root: Path, names: list[str], ins_error, excluded=None) -> list[Source]:
    out: list[Source] = []
    for name in names:
        rel = posixpath.normpath("/" + name).lstrip("/") if name not in ("", ".", "/") else "."
        if posixpath.normpath(name).startswith("../") or posixpath.normpath(name) == "..":
            raise ins_error(f"source {name} is outside the build context; COPY can only use files in the "
                            "context directory (move it in, or use a parent directory as context)")
        if _GLOB_CHARS.search(rel):
            found = _glob(root, rel, excluded)
            if not found:
                raise ins_error(f"no source files match {name} in the build context")
            out.extend(Source(root / r, r, True) for r in found)
            continue
        path = root / rel if rel != "." else root
        if not _inside(root, path):
            raise ins_error(f"source {name} resolves outside the build context (a symlink?); "
                            "COPY can only use files in the context directory")
        if (excluded and rel != "." and excluded(rel)) or not os.path.lexists(path):
            raise ins_error(f"{name}: not found in the build context, or excluded by .dockerignore; "
                            "check the path (it is relative to the context directory)")
        out.append(Source(path, rel, False))
    return out


def _inside(root: Path, path: Path) -> bool:
    real = os.path.realpath(path)
    return real == str(root) or real.startswith(str(root) + os.sep)


def _glob(root: Path, pattern: str, excluded) -> list[str]:
    depth = pattern.count("/")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        level = 0 if rel_dir == "." else rel_dir.count("/") + 1
        if level > depth:
            dirnames[:] = []
            continue
        for name in sorted(dirnames + filenames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if rel.count("/") == depth and fnmatch.fnmatchcase(rel, pattern) and not (excluded and excluded(rel)):
                found.append(rel)
    return sorted(found)


def walk(source: Source, excluded=None, descend_excluded: bool = False) -> list[tuple[str, Path, os.stat_result]]:
    """Every entry a source copies: (path relative to the source, host path, lstat), parents first.

    A directory source copies its contents; a symlink given by name is followed (inside the root).
    An excluded directory is not entered unless *descend_excluded* (a ``!`` pattern may take
    something inside it back); its kept entries then get new parents.
    """
    st = os.stat(source.path) if os.path.islink(source.path) else os.lstat(source.path)
    if not stat.S_ISDIR(st.st_mode):
        return [("", source.path, st)]
    out = []
    base = source.path
    for dirpath, dirnames, filenames in os.walk(base):
        rel_dir = os.path.relpath(dirpath, base)
        keep = []
        for name in sorted(dirnames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            full = os.path.join(dirpath, name)
            if excluded and excluded(_ctx_rel(source, rel)):
                if descend_excluded:
                    keep.append(name)
                continue
            keep.append(name)
            out.append((rel, Path(full), os.lstat(full)))
        dirnames[:] = keep
        for name in sorted(filenames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if excluded and excluded(_ctx_rel(source, rel)):
                continue
            full = os.path.join(dirpath, name)
            out.append((rel, Path(full), os.lstat(full)))
    return out


def _ctx_rel(source: Source, rel: str) -> str:
    return rel if source.rel == "." else f"{source.rel}/{rel}"


def content_digest(entries: list[tuple[str, Path, os.stat_result]], hashes: FileHashes | None = None) -> str:
    """What the cache compares: names, types, modes and file contents (not times, as Docker's cache)."""
    h = hashlib.sha256()
    for rel, path, st in entries:
        h.update(f"{rel}\0{stat.S_IFMT(st.st_mode)}\0{stat.S_IMODE(st.st_mode):o}\0".encode())
        if stat.S_ISREG(st.st_mode):
            h.update((hashes.digest(path, st) if hashes else _file_digest(path)).encode())
        elif stat.S_ISLNK(st.st_mode):
            h.update(os.readlink(path).encode())
        h.update(b"\n")
    return "sha256:" + h.hexdigest()


def _file_digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class FileHashes:
    """File digests remembered by (device, inode, size, mtime, ctime), so a cached rebuild reads no file twice."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._known: dict[str, str] | None = None
        self._dirty = False

    def _load(self) -> dict[str, str]:
        if self._known is None:
            from intermodal.fsutil import read_json

            self._known = read_json(self.path, default=None) or {}
        return self._known

    def digest(self, path: Path, st: os.stat_result) -> str:
        key = f"{path}:{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
        known = self._load()
        value = known.get(key)
        if value is None:
            value = known[key] = _file_digest(path)
            self._dirty = True
        return value

    def save(self) -> None:
        if self._dirty and self._known is not None:
            from intermodal.fsutil import atomic_write_json

            if len(self._known) > 100_000:  # bounded: forget everything rather than grow without end
                self._known = {}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.path, self._known)
            self._dirty = False


__all__ = ["BuildContext", "DockerfileError", "FileHashes", "Pattern", "Source", "content_digest", "ignored",
           "parse_ignore", "resolve_sources", "walk"]
