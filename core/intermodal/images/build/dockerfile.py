"""The Dockerfile parser: text -> stages of instructions, with line numbers for errors.

Follows buildkit's frontend/dockerfile/parser: parser directives only at
the very top (``# syntax=``, ``# escape=``), comment lines dropped anywhere
(also inside a continued line), a line ending in the escape character
continues on the next, heredocs (``<<EOF`` ... ``EOF``, ``<<-`` strips
tabs, a quoted word turns expansion off) for RUN, COPY and ADD, and the
JSON (exec) form recognised only when the text is a JSON list of strings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from intermodal.errors import DockerfileError

INSTRUCTIONS = ("ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
                "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR")
# flags each instruction takes (`--name=value` before its arguments); others are refused by name
FLAGS = {
    "FROM": ("platform",),
    "COPY": ("from", "chown", "chmod", "link"),
    "ADD": ("chown", "chmod", "link"),
    "RUN": (),
}
HEREDOC_INSTRUCTIONS = ("RUN", "COPY", "ADD")
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_KNOWN_DIRECTIVES = ("syntax", "escape", "check")
_HEREDOC = re.compile(r"<<(-?)(\s*)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\3")
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9._-]*$")


@dataclass(frozen=True)
class Heredoc:
    name: str
    content: str
    expand: bool  # an unquoted word: the shell (RUN) or the builder (COPY) expands variables


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    args: str  # the text after the keyword and its flags, continuation lines joined
    line: int  # 1-based line of the keyword
    original: str  # "RUN echo hi" as written (continuations joined), for output, history and the cache
    flags: tuple[tuple[str, str], ...] = ()
    heredocs: tuple[Heredoc, ...] = ()

    @property
    def json_args(self) -> list[str] | None:
        """The exec (JSON) form's list, or None for the shell form."""
        return json_list(self.args)

    def flag(self, name: str) -> str | None:
        return dict(self.flags).get(name)

    def error(self, why: str, file: str = "Dockerfile") -> DockerfileError:
        return DockerfileError(f"{file}:{self.line}: {self.keyword}: {why}")


@dataclass
class Stage:
    index: int
    base: str  # as written; ARGs before FROM are expanded by the executor
    name: str | None
    line: int
    platform: str | None = None
    instructions: list[Instruction] = field(default_factory=list)


@dataclass
class Dockerfile:
    stages: list[Stage]
    global_args: list[Instruction]  # ARG lines before the first FROM
    directives: dict[str, str]
    escape: str = "\\"
    name: str = "Dockerfile"

    def stage(self, ref: str) -> Stage | None:
        """A stage by name (case-insensitive) or index."""
        for stage in self.stages:
            if stage.name is not None and stage.name == ref.lower():
                return stage
        if ref.isdigit() and int(ref) < len(self.stages):
            return self.stages[int(ref)]
        return None


def json_list(text: str) -> list[str] | None:
    text = text.strip()
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None  # Docker falls back to the shell form for malformed JSON
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return value


def parse(text: str, name: str = "Dockerfile") -> Dockerfile:
    """Raises DockerfileError ("Dockerfile:LINE: why") for anything the build cannot run."""
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").split("\n")  # a UTF-8 BOM is not text
    directives, start = _directives(lines, name)
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise DockerfileError(f"{name}:1: invalid escape token {escape!r}: use \\ or `")
    instructions = _instructions(lines, start, escape, name)
    return _stages(instructions, directives, escape, name)


def _directives(lines: list[str], name: str) -> tuple[dict[str, str], int]:
    found: dict[str, str] = {}
    for i, line in enumerate(lines):
        match = _DIRECTIVE.match(line)
        if not match or match.group(1).lower() not in _KNOWN_DIRECTIVES:
            return found, i  # the first comment, blank line or instruction ends the directives
        key = match.group(1).lower()
        if key in found:
            raise DockerfileError(f"{name}:{i + 1}: only one {key} parser directive can be used")
        found[key] = match.group(2)
    return found, len(lines)


def _skippable(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _continues(line: str, escape: str) -> bool:
    return line.rstrip(" \t").endswith(escape)


def _instructions(lines: list[str], i: int, escape: str, name: str) -> list[Instruction]:
    out: list[Instruction] = []
    while i < len(lines):
        if _skippable(lines[i]):
            i += 1
            continue
        lineno = i + 1
        current = lines[i].lstrip()
        i += 1
        parts: list[str] = []
        while _continues(current, escape):
            parts.append(current.rstrip(" \t")[:-1])
            while i < len(lines) and _skippable(lines[i]):
                i += 1  # comments and blank lines inside a continued line are dropped
            if i >= len(lines):
                current = ""
                break
            current = lines[i]
            i += 1
        parts.append(current)
        instruction, i = _instruction("".join(parts).strip(), lineno, lines, i, name)
        out.append(instruction)
    return out


def _instruction(text: str, lineno: int, lines: list[str], i: int, name: str) -> tuple[Instruction, int]:
    word, _, rest = text.partition(" ")
    if "\t" in word:
        word, _, more = word.partition("\t")
        rest = more + " " + rest
    keyword = word.upper()
    if keyword not in INSTRUCTIONS:
        raise DockerfileError(f"{name}:{lineno}: unknown instruction: {word} "
                              f"(instructions are {', '.join(INSTRUCTIONS)})")
    rest = rest.strip()
    flags, rest = _flags(keyword, rest, lineno, name)
    heredocs: list[Heredoc] = []
    if keyword in HEREDOC_INSTRUCTIONS and json_list(rest) is None:
        for match in _HEREDOC.finditer(rest):
            doc, i = _heredoc(match, lines, i, lineno, name)
            heredocs.append(doc)
    if not rest:
        raise DockerfileError(f"{name}:{lineno}: {keyword} requires at least one argument")
    original = f"{keyword} {text[len(word):].strip()}".strip()
    return Instruction(keyword, rest, lineno, original, tuple(flags), tuple(heredocs)), i


def _flags(keyword: str, rest: str, lineno: int, name: str) -> tuple[list[tuple[str, str]], str]:
    flags: list[tuple[str, str]] = []
    allowed = FLAGS.get(keyword)
    if allowed is None:
        return flags, rest
    while rest.startswith("--"):
        word, _, after = rest.partition(" ")
        flag, eq, value = word[2:].partition("=")
        if keyword == "RUN" and flag in ("mount", "network", "security"):
            raise DockerfileError(f"{name}:{lineno}: RUN --{flag} is not supported by intermodal yet; "
                                  "remove the flag (RUN steps run without a network)")
        if flag not in allowed:
            raise DockerfileError(f"{name}:{lineno}: unknown flag --{flag} for {keyword}"
                                  + (f" (known: {', '.join('--' + f for f in allowed)})" if allowed else ""))
        if not eq and flag != "link":
            raise DockerfileError(f"{name}:{lineno}: {keyword} --{flag} needs a value (--{flag}=VALUE)")
        flags.append((flag, value if eq else "true"))
        rest = after.strip()
    return flags, rest


def _heredoc(match: re.Match[str], lines: list[str], i: int, lineno: int, name: str) -> tuple[Heredoc, int]:
    strip_tabs, word, quoted = match.group(1) == "-", match.group(4), bool(match.group(3))
    body: list[str] = []
    while i < len(lines):
        line = lines[i]
        i += 1
        if strip_tabs:
            line = line.lstrip("\t")
        if line == word:
            return Heredoc(word, "".join(f"{b}\n" for b in body), not quoted), i
        body.append(line)
    raise DockerfileError(f"{name}:{lineno}: heredoc <<{word} is not terminated: "
                          f"end it with a line that holds only {word}")


def _stages(instructions: list[Instruction], directives: dict[str, str], escape: str, name: str) -> Dockerfile:
    df = Dockerfile([], [], directives, escape, name)
    for ins in instructions:
        if ins.keyword == "FROM":
            df.stages.append(_stage(ins, len(df.stages), df, name))
        elif not df.stages:
            if ins.keyword != "ARG":
                raise DockerfileError(f"{name}:{ins.line}: {ins.keyword} before the first FROM: only ARG may "
                                      "come before FROM; start the build stage with FROM IMAGE")
            df.global_args.append(ins)
        else:
            df.stages[-1].instructions.append(ins)
    if not df.stages:
        raise DockerfileError(f"{name}: no FROM instruction: a Dockerfile starts with FROM IMAGE (or FROM scratch)")
    return df


def _stage(ins: Instruction, index: int, df: Dockerfile, name: str) -> Stage:
    words = ins.args.split()
    stage_name = None
    if len(words) == 3 and words[1].upper() == "AS":
        stage_name = words[2].lower()
        if not _STAGE_NAME.match(stage_name):
            raise DockerfileError(f"{name}:{ins.line}: invalid stage name {words[2]!r}: use letters, digits, "
                                  "'-', '_' and '.', starting with a letter")
        if df.stage(stage_name) is not None:
            raise DockerfileError(f"{name}:{ins.line}: duplicate stage name {stage_name!r}")
    elif len(words) != 1:
        raise DockerfileError(f"{name}:{ins.line}: FROM takes IMAGE [AS NAME], not {ins.args!r}")
    return Stage(index, words[0], stage_name, ins.line, ins.flag("platform"))
