"""Variable substitution in Dockerfile words, with the Dockerfile's own lexer rules.

Docker expands ``$VAR`` and ``${VAR...}`` itself (not through a shell) in
ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR and
ARG (buildkit frontend/dockerfile/shell/lex.go): single quotes are literal,
inside double quotes the escape character escapes only ``"``, ``$`` and
itself, elsewhere it escapes any character. Modifiers: ``:-`` ``-`` ``:+``
``+`` ``:?`` ``?`` and the pattern removals ``#`` ``##`` ``%`` ``%%``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping

from intermodal.errors import InvalidArgument

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPLIT = "\0"  # marks where an unquoted expansion had blanks (no Dockerfile text holds a NUL)


class SubstitutionError(InvalidArgument):
    """Raised with a short reason; the parser adds the line number."""


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """One word with quotes removed and variables expanded (ProcessWord)."""
    return _Lexer(word, env, escape).word()


def split_words(text: str, escape: str = "\\") -> list[str]:
    """Split on blanks outside quotes, keeping quotes and escapes for `expand`."""
    words: list[str] = []
    current: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        c = text[i]
        if c == escape and quote != "'" and i + 1 < len(text):
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
        raise SubstitutionError(f"unmatched {quote} quote in {text!r}")
    if current:
        words.append("".join(current))
    return words


def expand_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Words expanded as ProcessWords does (EXPOSE, VOLUME, COPY): an unquoted variable's value is
    split on blanks, a quoted one is not."""
    out: list[str] = []
    for raw in split_words(text, escape):
        value = _Lexer(raw, env, escape, split=True).word()
        if _SPLIT in value:
            out.extend(part for part in value.split(_SPLIT) if part)
        else:
            out.append(value)
    return out


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str, split: bool = False) -> None:
        self.text, self.env, self.escape, self.pos, self.split = text, env, escape, 0, split

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _next(self) -> str:
        c = self._peek()
        self.pos += 1
        return c

    def word(self, stop: str = "") -> str:
        """Read up to *stop* (a closing brace of ``${...}``) or the end."""
        out: list[str] = []
        while self.pos < len(self.text):
            c = self._peek()
            if stop and c == stop:
                break
            self.pos += 1
            if c == "'":
                out.append(self._single())
            elif c == '"':
                out.append(self._double())
            elif c == "$":
                value = self._dollar()
                out.append(re.sub(r"\s+", _SPLIT, value) if self.split and not stop else value)
            elif c == self.escape:
                if self.pos < len(self.text):
                    out.append(self._next())
            else:
                out.append(c)
        return "".join(out)

    def _single(self) -> str:
        end = self.text.find("'", self.pos)
        if end < 0:
            raise SubstitutionError(f"unmatched ' quote in {self.text!r}")
        value = self.text[self.pos:end]
        self.pos = end + 1
        return value

    def _double(self) -> str:
        out: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise SubstitutionError(f'unmatched " quote in {self.text!r}')
            c = self._next()
            if c == '"':
                return "".join(out)
            if c == "$":
                out.append(self._dollar())
            elif c == self.escape and self.pos < len(self.text):
                nxt = self._next()
                if nxt not in ('"', "$", self.escape):
                    out.append(c)
                out.append(nxt)
            else:
                out.append(c)

    def _dollar(self) -> str:
        if self._peek() == "{":
            self.pos += 1
            return self._braced()
        match = _NAME.match(self.text, self.pos)
        if not match:
            return "$"
        self.pos = match.end()
        return self.env.get(match.group(), "")

    def _braced(self) -> str:
        match = _NAME.match(self.text, self.pos)
        if not match:
            raise SubstitutionError(f"bad substitution in {self.text!r}: ${{ must be followed by a variable name")
        name = match.group()
        self.pos = match.end()
        c = self._next()
        if c == "}":
            return self.env.get(name, "")
        if c == "":
            raise SubstitutionError(f"missing '}}' in {self.text!r}")
        op = c
        if c == ":":
            op += self._next()
            if op not in (":-", ":+", ":?"):
                raise SubstitutionError(f"unsupported modifier {op!r} in {self.text!r} (use :- :+ :? - + ? # %)")
        elif c in "#%" and self._peek() == c:
            op += self._next()
        elif c not in "-+?#%":
            raise SubstitutionError(f"bad substitution in {self.text!r}: unexpected {c!r} after ${{{name}")
        arg = self.word(stop="}")
        if self._next() != "}":
            raise SubstitutionError(f"missing '}}' in {self.text!r}")
        return _modify(name, self.env, op, arg)


def _modify(name: str, env: Mapping[str, str], op: str, arg: str) -> str:
    is_set = name in env
    value = env.get(name, "")
    if op == ":-":
        return value if value else arg
    if op == "-":
        return value if is_set else arg
    if op == ":+":
        return arg if value else ""
    if op == "+":
        return arg if is_set else ""
    if op in (":?", "?"):
        if (op == ":?" and not value) or not is_set:
            raise SubstitutionError(f"{name}: {arg or 'is not allowed to be unset'}")
        return value
    return _remove(value, op, arg)


def _remove(value: str, op: str, pattern: str) -> str:
    """``#``/``##`` remove the shortest/longest matching prefix, ``%``/``%%`` the suffix (shell glob)."""
    cuts = range(len(value) + 1)
    if op in ("#", "##"):
        order = cuts if op == "#" else reversed(cuts)
        for i in order:
            if fnmatch.fnmatchcase(value[:i], pattern):
                return value[i:]
        return value
    order = reversed(cuts) if op == "%" else cuts
    for i in order:
        if fnmatch.fnmatchcase(value[i:], pattern):
            return value[:i]
    return value
