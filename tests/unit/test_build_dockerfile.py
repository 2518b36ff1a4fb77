"""The Dockerfile parser: continuations, comments, directives, heredocs, forms, flags, stages, errors."""

from __future__ import annotations

import pytest

from intermodal.errors import DockerfileError
from intermodal.images.build.dockerfile import json_list, parse


def only(text: str):
    df = parse(text)
    return df.stages[0].instructions


def test_continuations_join_lines_and_drop_comments_and_blank_lines_inside():
    ins = only("FROM x\nRUN echo a \\\n# a comment\n\n    && echo b\nCMD c\n")
    assert [i.keyword for i in ins] == ["RUN", "CMD"]
    assert ins[0].args == "echo a     && echo b"
    assert ins[0].line == 2 and ins[1].line == 6


def test_trailing_blanks_after_the_escape_still_continue():
    assert only("FROM x\nRUN a \\  \n b\n")[0].args == "a  b"


def test_keywords_are_case_insensitive_and_tabs_separate():
    ins = only("from x\nrun\techo hi\n")
    assert ins[0].keyword == "RUN" and ins[0].args == "echo hi"


@pytest.mark.parametrize(("text", "directives", "escape"), [
    ("# syntax=docker/dockerfile:1\nFROM x\n", {"syntax": "docker/dockerfile:1"}, "\\"),
    ("# escape=`\nFROM x\n", {"escape": "`"}, "`"),
    ("#escape = `\n# syntax=a\nFROM x\n", {"escape": "`", "syntax": "a"}, "`"),
    ("\n# escape=`\nFROM x\n", {}, "\\"),  # after a blank line it is a comment
    ("# comment\n# escape=`\nFROM x\n", {}, "\\"),
    ("FROM x\n# escape=`\n", {}, "\\"),
    ("# unknown=1\n# escape=`\nFROM x\n", {}, "\\"),  # an unknown directive is a comment, ending them
])
def test_parser_directives(text, directives, escape):
    df = parse(text)
    assert df.directives == directives and df.escape == escape


def test_backtick_escape_continues_lines_and_leaves_backslashes():
    ins = only("# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo\n")
    assert ins[0].args == "dir c:\\   && echo"


@pytest.mark.parametrize(("text", "message"), [
    ("FROM x\nFOO bar\n", "Dockerfile:2: unknown instruction: FOO"),
    ("FROM x\nRUN a\n  \nBOGUS\n", "Dockerfile:4: unknown instruction: BOGUS"),
    ("# escape=x\nFROM x\n", "invalid escape token"),
    ("# escape=`\n# escape=`\nFROM x\n", "Dockerfile:2: only one escape"),
    ("RUN true\nFROM x\n", "Dockerfile:1: RUN before the first FROM"),
    ("ARG A\n", "no FROM instruction"),
    ("FROM x\nRUN <<EOF\necho\n", "Dockerfile:2: heredoc <<EOF is not terminated"),
    ("FROM x\nRUN\n", "Dockerfile:2: RUN requires at least one argument"),
    ("FROM x\nCOPY --form=a b c\n", "Dockerfile:2: unknown flag --form for COPY"),
    ("FROM x\nCOPY --from b c\n", "needs a value"),
    ("FROM x\nRUN --mount=type=cache,target=/x true\n", "RUN --mount is not supported"),
    ("FROM x AS a\nFROM y AS A\n", "Dockerfile:2: duplicate stage name"),
    ("FROM x AS 1a\n", "invalid stage name"),
    ("FROM x y\n", "Dockerfile:1: FROM takes IMAGE"),
])
def test_errors_name_the_line(text, message):
    with pytest.raises(DockerfileError) as err:
        parse(text)
    assert message in str(err.value)


def test_heredocs():
    ins = only("FROM x\nRUN <<EOF\necho $A\n  two\nEOF\nRUN <<-'END' cat\n\tkeep\n\tEND\n"
               "COPY <<one <<two /d/\n1\none\n2\ntwo\n")
    assert ins[0].heredocs[0].content == "echo $A\n  two\n" and ins[0].heredocs[0].expand
    assert ins[1].heredocs[0].content == "keep\n" and not ins[1].heredocs[0].expand
    assert [h.name for h in ins[2].heredocs] == ["one", "two"]
    assert [h.content for h in ins[2].heredocs] == ["1\n", "2\n"]
    assert [i.keyword for i in ins] == ["RUN", "RUN", "COPY"]


def test_heredoc_markers_are_not_read_in_the_json_form_or_in_other_instructions():
    ins = only('FROM x\nRUN ["sh", "-c", "cat <<EOF"]\nCMD cat <<EOF\n')
    assert ins[0].heredocs == () and ins[1].heredocs == ()


@pytest.mark.parametrize(("text", "expected"), [
    ('["a", "b c"]', ["a", "b c"]),
    ("[]", []),
    ("  [\"a\"]  ", ["a"]),
    ("[a, b]", None),  # malformed JSON: the shell form, as Docker does
    ('["a", 1]', None),
    ("echo [x]", None),
    ('{"a": 1}', None),
])
def test_json_form(text, expected):
    assert json_list(text) == expected


def test_flags_and_stages():
    df = parse("ARG V=1\nFROM --platform=linux/amd64 base:$V AS Build\nCOPY --from=build --chown=1:2 --link a b\n"
               "FROM build\nCOPY --chmod=755 x y\n")
    assert [a.original for a in df.global_args] == ["ARG V=1"]
    first, second = df.stages
    assert (first.name, first.base, first.platform) == ("build", "base:$V", "linux/amd64")
    copy = first.instructions[0]
    assert copy.flags == (("from", "build"), ("chown", "1:2"), ("link", "true")) and copy.args == "a b"
    assert copy.original == "COPY --from=build --chown=1:2 --link a b"
    assert df.stage("BUILD") is first and df.stage("1") is second and df.stage("nope") is None
    assert second.instructions[0].flag("chmod") == "755"


def test_crlf_line_endings_and_a_byte_order_mark():
    ins = only("\ufeff# escape=`\r\nFROM x\r\nRUN a `\r\n b\r\n")
    assert ins[0].args == "a  b"
