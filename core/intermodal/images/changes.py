"""Docker's ``--change`` instructions, applied to an image config (import, commit).

Each change is one Dockerfile line: CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK,
LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME or WORKDIR, with the Dockerfile's
meaning: JSON or shell form for commands, ``$VAR``/``${VAR:-x}`` expansion
from the config's Env where the Dockerfile expands, a relative WORKDIR joined
to the current one, and ENTRYPOINT clearing an inherited CMD unless a CMD
was given in the same run (moby builder/dockerfile/dispatchers.go).
"""

from __future__ import annotations

import copy
import json
import posixpath
import re
from collections.abc import Sequence
from typing import Any

from intermodal.errors import InvalidArgument

INSTRUCTIONS = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD", "STOPSIGNAL", "USER",
                "VOLUME", "WORKDIR")
DEFAULT_SHELL = ["/bin/sh", "-c"]
_PROTOCOLS = ("tcp", "udp", "sctp")


def apply_changes(config: dict[str, Any] | None, changes: Sequence[str]) -> dict[str, Any]:
    """A copy of the image config's ``config`` object with *changes* applied in order.

    Raises InvalidArgument naming the change and what is wrong with it.
    """
    out = copy.deepcopy(config) if config else {}
    state = {"cmd_set": False}
    for change in changes:
        text = change.strip()
        word, _, rest = text.partition(" ")
        if "\t" in word:
            word, _, more = word.partition("\t")
            rest = more + " " + rest
        instruction = word.upper()
        rest = rest.strip()
        if instruction not in INSTRUCTIONS:
            raise _invalid(change, f"{word or 'an empty line'} is not supported; use one of {', '.join(INSTRUCTIONS)}")
        if not rest:
            raise _invalid(change, f"{instruction} needs an argument")
        try:
            _HANDLERS[instruction](out, rest, state)
        except _Bad as bad:
            raise _invalid(change, str(bad)) from None
    return out


class _Bad(Exception):
    pass


def _invalid(change: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"invalid --change {change!r}: {why} (example: --change 'CMD [\"sh\"]')")


# -- instructions ------------------------------------------------------------------


def _cmd(cfg: dict[str, Any], rest: str, state: dict[str, bool]) -> None:
    cfg["Cmd"] = _command(rest)
    state["cmd_set"] = True


def _entrypoint(cfg: dict[str, Any], rest: str, state: dict[str, bool]) -> None:
    cfg["Entrypoint"] = _command(rest)
    if not state["cmd_set"]:
        cfg.pop("Cmd", None)  # an inherited CMD does not fit a new ENTRYPOINT


def _env(cfg: dict[str, Any], rest: str, state: dict[str, bool]) -> None:
    # every pair expands against the Env before this line (ENV a=1 b=$a sees the old a)
    for key, value in _pairs(rest, _env_map(cfg), "ENV"):
        env = list(cfg.get("Env") or [])
        entry = f"{key}={value}"
        for i, existing in enumerate(env):
            if existing.split("=", 1)[0] == key:
                env[i] = entry  # a replaced variable keeps its place, as in Docker
                break
        else:
            env.append(entry)
        cfg["Env"] = env


def _label(cfg: dict[str, Any], rest: str, state: dict[str, bool]) -> None:
    labels = cfg.get("Labels") or {}
    for key, value in _pairs(rest, _env_map(cfg), "LABEL"):
        labels[key] = value
    cfg["Labels"] = labels


def _expose(cfg: dict[str, Any], rest: str, state: dict[str, bool]) -> None:
    ports = cfg.get("ExposedPorts") or {}
    for word in _words(rest, _env_map(cfg)):
        for port in _ports(word):
            ports[port] = {}
    cfg["ExposedPorts"] = ports


def _volume(cfg: dict[str, Any], rest: str, state: dict[str, bool]) -> None:
    env = _env_map(cfg)
    paths = _json_list(rest)
    paths = _words(rest, env) if paths is None else [_expand_word(p, env) for p in paths]
    volumes = cfg.get("Volumes") or {}
    for path in paths:
        if not path.strip():
            raise _Bad("VOLUME needs non-empty paths")
        volumes[path] = {}
    cfg["Volumes"] = volumes


def _workdir(cfg: dict[str, Any], rest: str, state: dict[str, bool]) -> None:
    path = _expand_word(rest, _env_map(cfg))
    if not path.startswith("/"):
        path = posixpath.join(cfg.get("WorkingDir") or "/", path)
    cfg["WorkingDir"] = "/" + posixpath.normpath(path).lstrip("/") if path.strip("/") else "/"


def _user(cfg: dict[str, Any], rest: str, state: dict[str, bool]) -> None:
    cfg["User"] = _expand_word(rest, _env_map(cfg))


def _stopsignal(cfg: dict[str, Any], rest: str, state: dict[str, bool]) -> None:
    value = _expand_word(rest, _env_map(cfg))
    name = value.upper().removeprefix("SIG")
    if not (value.isdigit() and 0 < int(value) < 65) and not re.fullmatch(r"[A-Z][A-Z0-9]*(?:[+-]\d+)?", name):
        raise _Bad(f"{value!r} is not a signal name or number (example: SIGTERM, 15)")
    cfg["StopSignal"] = value


def _onbuild(cfg: dict[str, Any], rest: str, state: dict[str, bool]) -> None:
    word, _, args = rest.partition(" ")
    trigger = word.upper()
    if trigger in ("ONBUILD", "FROM", "MAINTAINER"):
        raise _Bad(f"{trigger} is not allowed as an ONBUILD trigger")
    cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), f"{trigger} {args.strip()}".strip()]


def _healthcheck(cfg: dict[str, Any], rest: str, state: dict[str, bool]) -> None:
    options: dict[str, str] = {}
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        name, eq, value = flag[2:].partition("=")
        if not eq:
            raise _Bad(f"HEALTHCHECK option --{name} needs a value (--{name}=VALUE)")
        options[name] = value
        rest = rest.strip()
    word, _, command = rest.partition(" ")
    if word.upper() == "NONE":
        if options or command.strip():
            raise _Bad("HEALTHCHECK NONE takes no options or arguments")
        cfg["Healthcheck"] = {"Test": ["NONE"]}
        return
    if word.upper() != "CMD" or not command.strip():
        raise _Bad("HEALTHCHECK needs NONE or CMD followed by a command")
    argv = _json_list(command)
    check: dict[str, Any] = {"Test": ["CMD", *argv] if argv is not None else ["CMD-SHELL", command.strip()]}
    fields = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
              "start-interval": "StartInterval"}
    for name, value in options.items():
        if name in fields:
            check[fields[name]] = parse_duration(value)
        elif name == "retries":
            if not value.isdigit():
                raise _Bad(f"--retries must be a whole number, not {value!r}")
            check["Retries"] = int(value)
        else:
            raise _Bad(f"unknown HEALTHCHECK option --{name}")
    cfg["Healthcheck"] = check


_HANDLERS = {
    "CMD": _cmd, "ENTRYPOINT": _entrypoint, "ENV": _env, "EXPOSE": _expose, "HEALTHCHECK": _healthcheck,
    "LABEL": _label, "ONBUILD": _onbuild, "STOPSIGNAL": _stopsignal, "USER": _user, "VOLUME": _volume,
    "WORKDIR": _workdir,
}


# -- pieces ------------------------------------------------------------------------


def _command(rest: str) -> list[str]:
    """JSON form as given; shell form runs through /bin/sh -c (no expansion: the shell does it)."""
    argv = _json_list(rest)
    return argv if argv is not None else [*DEFAULT_SHELL, rest]


def _json_list(text: str) -> list[str] | None:
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


def _env_map(cfg: dict[str, Any]) -> dict[str, str]:
    out = {}
    for entry in cfg.get("Env") or ():
        key, _, value = entry.partition("=")
        out[key] = value
    return out


def _pairs(rest: str, env: dict[str, str], what: str) -> list[tuple[str, str]]:
    """``k=v k2="v 2"``, or the legacy ``k value with spaces``."""
    raw = _split_raw(rest)
    if "=" not in raw[0]:
        key = raw[0]
        value = rest[len(raw[0]):].strip()
        if not value:
            raise _Bad(f"{what} {key} needs a value ({what} {key}=VALUE)")
        return [(_expand_word(key, env), _expand_word(value, env))]
    out = []
    for word in raw:
        if "=" not in word:
            raise _Bad(f"{what} expects KEY=VALUE pairs, {word!r} has no '='")
        key, _, value = word.partition("=")
        key = _expand_word(key, env)
        if not key:
            raise _Bad(f"{what} has an empty name in {word!r}")
        out.append((key, _expand_word(value, env)))
    return out


def _split_raw(text: str) -> list[str]:
    """Split on blanks outside quotes, keeping quotes and escapes for the expansion step."""
    words: list[str] = []
    current: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and quote != "'" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c.isspace():
            if current:
                words.append("".join(current))
                current = []
            i += 1
            continue
        current.append(c)
        i += 1
    if quote:
        raise _Bad(f"unmatched {quote} quote")
    if current:
        words.append("".join(current))
    return words


def _words(text: str, env: dict[str, str]) -> list[str]:
    return [_expand_word(w, env) for w in _split_raw(text)]


def _expand_word(word: str, env: dict[str, str]) -> str:
    """Remove quotes and escapes and expand variables, as the Dockerfile shell lexer does."""
    out: list[str] = []
    quote = ""
    i = 0
    while i < len(word):
        c = word[i]
        if quote == "'":
            if c == "'":
                quote = ""
            else:
                out.append(c)
            i += 1
        elif c == "\\" and i + 1 < len(word):
            nxt = word[i + 1]
            # inside double quotes only \" \\ \$ are escapes; elsewhere any char
            if quote == '"' and nxt not in '"\\$':
                out.append(c)
            out.append(nxt)
            i += 2
        elif c == "$":
            value, i = _variable(word, i, env)
            out.append(value)
        elif c == '"':
            quote = "" if quote else '"'
            i += 1
        elif c == "'" and not quote:
            quote = "'"
            i += 1
        else:
            out.append(c)
            i += 1
    if quote:
        raise _Bad(f"unmatched {quote} quote in {word!r}")
    return "".join(out)


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _variable(word: str, i: int, env: dict[str, str]) -> tuple[str, int]:
    """Expand ``$NAME``, ``${NAME}``, ``${NAME:-default}``, ``${NAME:+alternative}`` at word[i]."""
    if word.startswith("${", i):
        end = word.find("}", i)
        if end < 0:
            raise _Bad(f"missing '}}' in {word!r}")
        body = word[i + 2:end]
        match = _NAME.match(body)
        if not match:
            raise _Bad(f"bad variable name in {word!r}")
        name, modifier = match.group(), body[match.end():]
        value = env.get(name, "")
        if not modifier:
            return value, end + 1
        if modifier.startswith(":-"):
            return (value or _expand_word(modifier[2:], env)), end + 1
        if modifier.startswith(":+"):
            return (_expand_word(modifier[2:], env) if value else ""), end + 1
        raise _Bad(f"unsupported modifier {modifier!r} in {word!r} (use :- or :+)")
    match = _NAME.match(word, i + 1)
    if not match:
        return "$", i + 1
    return env.get(match.group(), ""), match.end()


def _ports(word: str) -> list[str]:
    spec, _, proto = word.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in _PROTOCOLS:
        raise _Bad(f"protocol {proto!r} in {word!r} is not tcp, udp or sctp")
    low, dash, high = spec.partition("-")
    try:
        first, last = int(low), int(high) if dash else int(low)
    except ValueError:
        raise _Bad(f"{word!r} is not a port, a port/protocol or a range like 8000-8010/tcp") from None
    if not 0 < first <= last <= 65535:
        raise _Bad(f"port {word!r} is out of range 1-65535")
    return [f"{port}/{proto}" for port in range(first, last + 1)]


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
            "h": 3_600_000_000_000}


def parse_duration(text: str) -> int:
    """A Go duration (``30s``, ``1m30s``, ``500ms``) in nanoseconds; ``0`` is allowed."""
    if text == "0":
        return 0
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_NS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise _Bad(f"{text!r} is not a duration (examples: 30s, 1m30s, 500ms)")
    return int(total)
