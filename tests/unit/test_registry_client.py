"""Pure parts of the registry client: challenges, auth.json, error mapping, chain ids, platforms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from intermodal.errors import (
    AuthenticationError,
    BlobNotFound,
    InvalidArgument,
    ManifestUnknown,
    NotFound,
    RegistryError,
)
from intermodal.images import auth
from intermodal.images.pull import chain_ids, parse_platform, verify_digest
from intermodal.images.registry import Challenge, _check, api_host, parse_challenges, pick_challenge


@pytest.mark.parametrize(("header", "expected"), [
    ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
     [Challenge("bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                           "scope": "repository:library/busybox:pull"})]),
    ('Bearer realm="https://r/t", scope="repository:a/b:pull,push"',
     [Challenge("bearer", {"realm": "https://r/t", "scope": "repository:a/b:pull,push"})]),
    ('Basic realm="intermodal-test"', [Challenge("basic", {"realm": "intermodal-test"})]),
    ('basic realm=plain', [Challenge("basic", {"realm": "plain"})]),
    ("Basic", [Challenge("basic", {})]),
    ('Basic realm="a", Bearer realm="https://t",service="s"',
     [Challenge("basic", {"realm": "a"}), Challenge("bearer", {"realm": "https://t", "service": "s"})]),
    ('Bearer realm="with \\"quote\\""', [Challenge("bearer", {"realm": 'with "quote"'})]),
    ("", []),
])
def test_parse_challenges(header: str, expected: list[Challenge]) -> None:
    assert parse_challenges(header) == expected


def test_bearer_is_preferred() -> None:
    challenges = parse_challenges('Basic realm="a", Bearer realm="https://t"')
    assert pick_challenge(challenges).scheme == "bearer"
    assert pick_challenge(parse_challenges('Negotiate abc')) is None


@pytest.mark.parametrize(("domain", "host"), [("docker.io", "registry-1.docker.io"), ("quay.io", "quay.io"),
                                              ("127.0.0.1:5000", "127.0.0.1:5000")])
def test_api_host(domain: str, host: str) -> None:
    assert api_host(domain) == host


class Response:
    """The three attributes `_check` reads, for table tests (no HTTP involved)."""

    def __init__(self, status: int, body: object = b"", url: str = "https://reg:5000/v2/x/manifests/1",
                 reason: str = "") -> None:
        self.status_code = status
        self.content = json.dumps(body).encode() if isinstance(body, dict) else body
        self.url = url
        self.reason = reason


def errors(code: str, message: str) -> dict:
    return {"errors": [{"code": code, "message": message, "detail": None}]}


@pytest.mark.parametrize(("status", "body", "not_found", "cls", "text"), [
    (404, errors("MANIFEST_UNKNOWN", "manifest unknown"), ManifestUnknown, ManifestUnknown,
     "manifest unknown; check the name and tag (404 from https://reg:5000/v2/x/manifests/1)"),
    (404, errors("NAME_UNKNOWN", "repository name not known to registry"), ManifestUnknown, ManifestUnknown,
     "name unknown: repository name not known to registry; check the name and tag"),
    (404, errors("BLOB_UNKNOWN", "blob unknown to registry"), BlobNotFound, BlobNotFound, "blob unknown"),
    (404, b"", None, RegistryError, "HTTP 404"),
    (401, errors("UNAUTHORIZED", "authentication required"), ManifestUnknown, AuthenticationError,
     "imod login reg:5000"),
    (403, errors("DENIED", "requested access to the resource is denied"), ManifestUnknown, AuthenticationError,
     "access denied"),
    (500, b"<html>oops</html>", ManifestUnknown, RegistryError, "(500 from https://reg:5000/v2/x/manifests/1)"),
    (429, errors("TOOMANYREQUESTS", "slow down"), ManifestUnknown, RegistryError, "wait and retry"),
    (400, errors("MANIFEST_INVALID", "manifest invalid"), ManifestUnknown, RegistryError, "manifest invalid"),
])
def test_check_maps_errors(status: int, body: object, not_found: type | None, cls: type, text: str) -> None:
    with pytest.raises(cls) as info:
        _check(Response(status, body), not_found=not_found)
    assert text in str(info.value)
    if isinstance(info.value, RegistryError):
        assert info.value.status == status
        assert info.value.url == "https://reg:5000/v2/x/manifests/1"


def test_check_passes_success_and_hides_credentials_in_urls() -> None:
    ok = Response(200)
    assert _check(ok) is ok
    with pytest.raises(RegistryError) as info:
        _check(Response(502, url="https://user:pw@reg/v2/"))
    assert "pw" not in str(info.value)


# -- auth.json ----------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "normal"), [
    ("https://index.docker.io/v1/", "docker.io"),
    ("index.docker.io", "docker.io"),
    ("docker.io", "docker.io"),
    ("http://127.0.0.1:5000", "127.0.0.1:5000"),
    ("https://reg.example:5000/v2/", "reg.example:5000"),
    ("quay.io", "quay.io"),
])
def test_normalize_key(key: str, normal: str) -> None:
    assert auth.normalize_key(key) == normal


def test_save_load_remove(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "auth.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"auths": {"other:1": {"auth": "eDp5"}}, "credHelpers": {"x": "y"}}))

    auth.save_credentials("reg:5000", "alice", "p:w", path)

    doc = json.loads(path.read_text())
    assert doc["auths"]["reg:5000"] == {"auth": "YWxpY2U6cDp3"}  # base64("alice:p:w")
    assert doc["auths"]["other:1"] == {"auth": "eDp5"} and doc["credHelpers"] == {"x": "y"}
    assert path.stat().st_mode & 0o777 == 0o600
    assert auth.load_credentials("reg:5000", path) == ("alice", "p:w")
    assert auth.load_credentials("nowhere:1", path) is None

    auth.remove_credentials("reg:5000", path)
    assert auth.load_credentials("reg:5000", path) is None
    with pytest.raises(NotFound, match="not logged in"):
        auth.remove_credentials("reg:5000", path)
    auth.remove_credentials(None, path)
    assert json.loads(path.read_text())["auths"] == {}


def test_docker_config_is_a_read_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    (tmp_path / ".docker").mkdir()
    (tmp_path / ".docker" / "config.json").write_text(json.dumps(
        {"auths": {"https://index.docker.io/v1/": {"auth": "Ym9iOmh1bnRlcjI="}, "old:1": {"username": "u",
                                                                                       "password": "p"}}}))

    assert auth.default_authfile() == tmp_path / "run" / "containers" / "auth.json"
    assert auth.load_credentials("docker.io") == ("bob", "hunter2")
    assert auth.load_credentials("old:1") == ("u", "p")

    written = auth.save_credentials("docker.io", "carol", "x")
    assert written == tmp_path / "run" / "containers" / "auth.json"
    assert auth.load_credentials("docker.io") == ("carol", "x")  # podman's file is read first


def test_broken_auth_entries_are_named(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"auths": {"reg:1": {"auth": "bm9jb2xvbg=="}}}))  # "nocolon"
    with pytest.raises(InvalidArgument, match="no ':'"):
        auth.load_credentials("reg:1", path)
    path.write_text("{not json")
    with pytest.raises(InvalidArgument, match="not valid JSON"):
        auth.load_credentials("reg:1", path)


# -- pull helpers ----------------------------------------------------------------------------


def test_chain_ids_follow_the_image_spec() -> None:
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    import hashlib

    assert chain_ids([]) == []
    assert chain_ids([a]) == [a]
    assert chain_ids([a, b]) == [a, "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()]


@pytest.mark.parametrize(("text", "expected"), [
    ("linux/amd64", {"os": "linux", "architecture": "amd64"}),
    ("linux/arm64/v8", {"os": "linux", "architecture": "arm64", "variant": "v8"}),
    (None, None),
])
def test_parse_platform(text: str | None, expected: dict | None) -> None:
    assert parse_platform(text) == expected


@pytest.mark.parametrize("text", ["amd64", "linux/", "a/b/c/d", "/amd64"])
def test_bad_platforms_are_refused(text: str) -> None:
    with pytest.raises(InvalidArgument, match="os/arch"):
        parse_platform(text)


def test_verify_digest() -> None:
    from intermodal.errors import DigestMismatch

    verify_digest(b"x", "sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881", "m")
    with pytest.raises(DigestMismatch):
        verify_digest(b"y", "sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881", "m")


# -- progress ---------------------------------------------------------------------------------


def test_progress_on_a_terminal_rewrites_layer_lines_in_place() -> None:
    import io

    from intermodal.images.progress import TextProgress

    out = io.StringIO()
    progress = TextProgress(out, tty=True, interval=0)
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    progress.update(a, "Pulling fs layer")
    progress.update(b, "Pulling fs layer")
    progress.update(a, "Downloading", 500_000, 2_000_000)
    progress.update(a, "Pull complete")
    progress.line("Digest: sha256:x")

    text = out.getvalue()
    assert "\x1b[2A" in text  # cursor back up over the two layer lines
    assert "aaaaaaaaaaaa: Downloading  500kB/2MB" in text
    assert text.endswith("\x1b[2Kaaaaaaaaaaaa: Pull complete\n"
                         "\x1b[2Kbbbbbbbbbbbb: Pulling fs layer\nDigest: sha256:x\n")


def test_progress_elsewhere_prints_only_final_states() -> None:
    import io

    from intermodal.images.progress import TextProgress

    out = io.StringIO()
    progress = TextProgress(out, tty=False)
    a = "sha256:" + "a" * 64
    for status in ("Pulling fs layer", "Downloading", "Download complete", "Extracting", "Pull complete"):
        progress.update(a, status, 1, 2)
    progress.update(a, "Mounted from team/app")
    assert out.getvalue() == "aaaaaaaaaaaa: Pull complete\naaaaaaaaaaaa: Mounted from team/app\n"


def test_cert_dir_explicit_then_podmans_then_dockers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from intermodal.images import registry

    podman, docker = tmp_path / "containers-certs.d", tmp_path / "docker-certs.d"
    monkeypatch.setattr(registry, "CERTS_DIRS", (podman, docker))
    assert registry.find_cert_dir("reg:5000", None) is None
    (docker / "reg:5000").mkdir(parents=True)
    assert registry.find_cert_dir("reg:5000", None) == docker / "reg:5000"
    (podman / "reg:5000").mkdir(parents=True)
    assert registry.find_cert_dir("reg:5000", None) == podman / "reg:5000"
    assert registry.find_cert_dir("reg:5000", tmp_path) == tmp_path
    with pytest.raises(RegistryError, match="not a directory"):
        registry.find_cert_dir("reg:5000", tmp_path / "missing")
