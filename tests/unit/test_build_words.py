"""Dockerfile variable substitution: buildkit's lexer rules, as a table."""

from __future__ import annotations

import pytest

from intermodal.images.build.words import SubstitutionError, expand, expand_words, split_words

ENV = {"FOO": "bar", "EMPTY": "", "PATHV": "/usr/local/bin", "FILE": "archive.tar.gz", "SP": "a b"}


@pytest.mark.parametrize(("word", "expected"), [
    ("$FOO", "bar"),
    ("${FOO}", "bar"),
    ("x${FOO}y", "xbary"),
    ("$FOO-x", "bar-x"),
    ("'$FOO'", "$FOO"),
    ('"$FOO"', "bar"),
    ('"${FOO}s"', "bars"),
    ("\\$FOO", "$FOO"),
    ('"\\$FOO"', "$FOO"),
    ('"a\\b"', "a\\b"),  # inside double quotes only \" \$ \\ are escapes
    ('"a\\"b"', 'a"b'),
    ("a\\ b", "a b"),
    ("$UNSET", ""),
    ("$", "$"),
    ("a$", "a$"),
    ("$1", "$1"),
    ("${UNSET:-def}", "def"),
    ("${EMPTY:-def}", "def"),
    ("${EMPTY-def}", ""),
    ("${UNSET-def}", "def"),
    ("${FOO:-def}", "bar"),
    ("${FOO:+alt}", "alt"),
    ("${EMPTY:+alt}", ""),
    ("${EMPTY+alt}", "alt"),
    ("${UNSET+alt}", ""),
    ("${UNSET:-$FOO}", "bar"),
    ("${UNSET:-'x y'}", "x y"),
    ("${PATHV##*/}", "bin"),
    ("${PATHV#*/}", "usr/local/bin"),
    ("${FILE%.*}", "archive.tar"),
    ("${FILE%%.*}", "archive"),
    ("${FOO:?must be set}", "bar"),
    ("'it''s'", "its"),
    ('"$SP"', "a b"),
])
def test_expand(word, expected):
    assert expand(word, ENV) == expected


@pytest.mark.parametrize(("word", "escape", "expected"), [
    ("`$FOO", "`", "$FOO"),
    ("\\$FOO", "`", "\\bar"),  # with the backtick escape a backslash is an ordinary character
    ('"`"x"', "`", '"x'),
])
def test_expand_with_backtick_escape(word, escape, expected):
    assert expand(word, ENV, escape) == expected


@pytest.mark.parametrize(("word", "message"), [
    ("${FOO", "missing '}'"),
    ("${UNSET:?must be set}", "UNSET: must be set"),
    ("${UNSET?}", "UNSET"),
    ("${EMPTY:?}", "EMPTY"),
    ("'open", "unmatched '"),
    ('"open', 'unmatched "'),
    ("${1}", "bad substitution"),
    ("${FOO:x}", "unsupported modifier"),
])
def test_expand_errors(word, message):
    with pytest.raises(SubstitutionError, match=message):
        expand(word, ENV)


@pytest.mark.parametrize(("text", "expected"), [
    ("a b  c", ["a", "b", "c"]),
    ('k="a b" j=c', ["k=a b", "j=c"]),
    ("x=$SP", ["x=a", "b"]),  # an unquoted expansion is split on blanks (buildkit's ProcessWords)
    ('"$SP" x', ["a b", "x"]),  # a quoted one is not
    ("${UNSET:-x} y", ["x", "y"]),
    ("a\\ b c", ["a b", "c"]),
    ("'q w' e", ["q w", "e"]),
])
def test_expand_words(text, expected):
    assert expand_words(text, ENV) == expected


def test_split_words_keeps_quotes_for_expansion():
    assert split_words('a="x y" b') == ['a="x y"', "b"]
    with pytest.raises(SubstitutionError):
        split_words('a="x')
