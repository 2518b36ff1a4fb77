"""`.dockerignore` patterns with moby/patternmatcher's semantics, and COPY source resolution."""

from __future__ import annotations

import pytest

from intermodal.errors import DockerfileError
from intermodal.images.build.context import BuildContext, content_digest, ignored, parse_ignore, walk


@pytest.mark.parametrize(("patterns", "path", "expected"), [
    ("*.txt", "a.txt", True),
    ("*.txt", "dir/a.txt", False),  # * does not cross /
    ("**/*.txt", "dir/sub/a.txt", True),
    ("**/*.txt", "a.txt", True),
    ("dir", "dir", True),
    ("dir", "dir/sub/file", True),  # a matched directory excludes what is under it
    ("dir/*", "dir/file", True),
    ("dir/*", "dirx/file", False),
    ("/dir", "dir/x", True),  # a leading / is dropped
    ("./dir/../other", "other", True),  # cleaned like a path
    ("a?c", "abc", True),
    ("a?c", "a/c", False),
    ("[a-c]x", "bx", True),
    ("[!a-c]x", "bx", False),
    ("[!a-c]x", "dx", True),
    ("**", "any/thing", True),
    ("dir/**/x", "dir/x", True),
    ("dir/**/x", "dir/a/b/x", True),
    ("dir/**", "dir/a/b", True),
    ("a\\*b", "a*b", True),
    ("a\\*b", "axb", False),
    ("*.md\n!README.md", "README.md", False),
    ("*.md\n!README.md", "other.md", True),
    ("dir\n!dir/keep", "dir/keep", False),
    ("dir\n!dir/keep", "dir/drop", True),
    ("!a\na", "a", True),  # the last matching pattern decides
    ("a\n!a", "a", False),
    ("# comment\n\n  x  ", "x", True),
    ("# x", "# x", False),
    (".", "anything", False),  # "." is dropped, as Docker drops it
    ("", "a", False),
])
def test_ignore_patterns(patterns, path, expected):
    assert ignored(parse_ignore(patterns), path) is expected


def test_context_reads_containerignore_before_dockerignore(tmp_path):
    (tmp_path / ".dockerignore").write_text("a\n")
    (tmp_path / ".containerignore").write_text("b\n")
    ctx = BuildContext(tmp_path)
    assert ctx.excluded("b") and not ctx.excluded("a")


def test_sources_globs_escapes_and_misses(tmp_path):
    for name in ("a.txt", "b.txt", "c.log", "sub/d.txt", "skip.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(name)
    (tmp_path / ".dockerignore").write_text("skip.txt\n")
    (tmp_path / "link").symlink_to("/etc")
    ctx = BuildContext(tmp_path)

    def err(why: str) -> DockerfileError:
        return DockerfileError(why)

    assert [s.rel for s in ctx.sources(["*.txt"], err)] == ["a.txt", "b.txt"]  # skip.txt is ignored
    assert [s.rel for s in ctx.sources(["/sub/../a.txt", "sub"], err)] == ["a.txt", "sub"]
    with pytest.raises(DockerfileError, match="outside the build context"):
        ctx.sources(["../x"], err)
    with pytest.raises(DockerfileError, match="outside the build context"):
        ctx.sources(["link"], err)
    with pytest.raises(DockerfileError, match="not found in the build context"):
        ctx.sources(["missing"], err)
    with pytest.raises(DockerfileError, match="not found in the build context"):
        ctx.sources(["skip.txt"], err)
    with pytest.raises(DockerfileError, match="no source files match"):
        ctx.sources(["*.none"], err)


def test_walk_and_content_digest_leave_out_ignored_files(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep").write_text("1")
    (tmp_path / "d" / "drop").write_text("2")
    (tmp_path / ".dockerignore").write_text("d/drop\n")
    ctx = BuildContext(tmp_path)
    source = ctx.sources(["d"], DockerfileError)[0]
    entries = walk(source, ctx.excluded)
    assert [rel for rel, _, _ in entries] == ["keep"]
    before = content_digest(entries)
    (tmp_path / "d" / "drop").write_text("changed")
    assert content_digest(walk(source, ctx.excluded)) == before  # an ignored file does not bust the cache
    (tmp_path / "d" / "keep").write_text("changed")
    assert content_digest(walk(source, ctx.excluded)) != before


def test_an_exception_inside_an_excluded_directory_is_copied(tmp_path):
    for name in ("logs/keep.log", "logs/drop.log", "logs/deep/x.log"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    (tmp_path / ".dockerignore").write_text("logs\n!logs/keep.log\n")
    ctx = BuildContext(tmp_path)
    root = ctx.sources(["."], DockerfileError)[0]
    names = [rel for rel, _, _ in walk(root, ctx.excluded, ctx.has_exceptions)]
    assert "logs/keep.log" in names
    assert not any(n.startswith("logs/") and n != "logs/keep.log" for n in names) and "logs" not in names
    assert [rel for rel, _, _ in walk(root, ctx.excluded)] == [".dockerignore"]  # without: not entered


def test_an_ignore_file_named_after_the_dockerfile_wins(tmp_path):
    (tmp_path / ".dockerignore").write_text("a\n")
    (tmp_path / "app.df").write_text("FROM x\n")
    (tmp_path / "app.df.dockerignore").write_text("b\n")
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    ctx = BuildContext(tmp_path)
    assert ctx.dockerfile(None) == tmp_path / "Dockerfile" and ctx.excluded("a")
    assert ctx.dockerfile(str(tmp_path / "app.df")) == tmp_path / "app.df"
    assert ctx.excluded("b") and not ctx.excluded("a")
