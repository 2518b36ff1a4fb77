import pytest

from intermodal.errors import InvalidReference
from intermodal.images.reference import parse, parse_repository

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "full", "familiar"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("team/app", "docker.io/team/app:latest", "team/app:latest"),
        ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
        ("localhost:5000/a/b:1", "localhost:5000/a/b:1", "localhost:5000/a/b:1"),
        ("127.0.0.1:5000/x", "127.0.0.1:5000/x:latest", "127.0.0.1:5000/x:latest"),
        ("[::1]:5000/x:y", "[::1]:5000/x:y", "[::1]:5000/x:y"),
        ("quay.io/org/app:v1.2_3", "quay.io/org/app:v1.2_3", "quay.io/org/app:v1.2_3"),
        (f"busybox@{D}", f"docker.io/library/busybox@{D}", f"busybox@{D}"),
        (f"busybox:1@{D}", f"docker.io/library/busybox:1@{D}", f"busybox:1@{D}"),
        ("a__b-c.d/e", "docker.io/a__b-c.d/e:latest", "a__b-c.d/e:latest"),
    ],
)
def test_parse_normalises_like_docker(text: str, full: str, familiar: str) -> None:
    ref = parse(text)
    assert str(ref) == full
    assert ref.familiar == familiar


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("Busybox", "lowercase"),
        ("a/../b", "does not follow"),
        ("../etc/passwd", "does not follow"),
        ("/abs", "does not follow"),
        ("busybox:", "does not follow"),
        ("busybox:-bad", "does not follow"),
        ("busybox@sha256:abc", "does not follow"),
        ("busybox@md5:" + "a" * 32, "only sha256"),
        ("a" * 64, "id cannot be used"),
        ("x/" + "a" * 300, "longer than"),
        ("bad name", "does not follow"),
    ],
)
def test_parse_refuses_malformed(text: str, reason: str) -> None:
    with pytest.raises(InvalidReference, match=reason):
        parse(text)


def test_repository_refuses_tag() -> None:
    assert str(parse_repository("localhost:5000/app")) == "localhost:5000/app"
    with pytest.raises(InvalidReference, match="without tag"):
        parse_repository("app:1")


def test_with_tag_and_digest_replace_each_other() -> None:
    ref = parse(f"app:1@{D}")
    assert str(ref.with_tag("2")) == "docker.io/library/app:2"
    assert str(ref.with_digest(D)) == f"docker.io/library/app@{D}"
