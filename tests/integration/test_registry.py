"""Pull, push, login against a real distribution registry on 127.0.0.1, with skopeo as the peer."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from intermodal.engine import Engine
from intermodal.errors import AuthenticationError, DigestMismatch, ImageNotFound, ManifestUnknown, RegistryError
from intermodal.images import mediatypes as mt
from intermodal.images.registry import RegistryClient
from tests.support.registry import craft_documents, craft_image

pytestmark = pytest.mark.requires("root", "registry")

PLAIN = {"tls_verify": False}


def has_layer_store() -> bool:
    from importlib.util import find_spec

    return all(find_spec(m) is not None for m in ("intermodal.images.importer", "intermodal.storage.layers"))


needs_layer_store = pytest.mark.skipif(not has_layer_store(), reason="needs storage/layers.py and images/importer.py")
needs_layers = pytest.mark.skipif(importlib.util.find_spec("intermodal.storage.layers") is None,
                                  reason="needs the layer store (storage/layers.py)")


@pytest.fixture
def other(tmp_path: Path) -> Engine:
    """A second, empty engine root: the other host of a round trip."""
    return Engine(root=tmp_path / "other")


def small_image(engine: Engine, ref: str = "x:1", *, arch: str = "amd64"):
    return craft_image(engine, ref, [{"etc/a": b"first layer\n"}, {"etc/b": os.urandom(3000)}], architecture=arch)


# -- round trips ---------------------------------------------------------------------


@pytest.mark.parametrize("media", ["oci", "docker"])
def test_push_then_pull_round_trip(engine: Engine, other: Engine, registry, media: str) -> None:
    record = craft_image(engine, "x:1", [{"etc/a": b"first layer\n"}, {"etc/b": os.urandom(3000)}], media=media)
    digest = engine.images.push("x:1", f"{registry.host}/team/x:1", **PLAIN)

    pulled = other.images.pull(f"{registry.host}/team/x:1", unpack=False, **PLAIN)

    assert pulled.id == record.id
    assert pulled.manifest == digest == record.manifest
    assert pulled.media_type == record.media_type == (mt.OCI_MANIFEST if media == "oci" else mt.DOCKER_MANIFEST)
    assert f"{registry.host}/team/x@{digest}" in pulled.digests
    assert f"{registry.host}/team/x:1" in pulled.tags
    assert f"{registry.host}/team/x@{digest}" in engine.images.get("x:1").digests
    for blob in (pulled.id, *(d.digest for d in other.images.store.manifest(pulled).layers)):
        assert other.images.store.blobs.read(blob) == engine.images.store.blobs.read(blob)


@needs_layer_store
def test_busybox_round_trip_with_the_cli(busybox_image: str, engine_root: Path, tmp_path: Path, imod,
                                         registry) -> None:
    ref = f"{registry.host}/library/busybox:1"
    out = imod("push", "--tls-verify=false", "-q", busybox_image, ref).stdout.decode().strip()
    assert out.startswith("sha256:")

    other_root = tmp_path / "second"
    proc = subprocess.run([str(Path(sys.executable).parent / "imod"), "--root", str(other_root), "pull",
                           "--tls-verify=false", ref], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith(ref)
    assert f"Digest: {out}" in proc.stdout
    assert Engine(root=other_root).images.get(ref).id == Engine(root=engine_root).images.get(busybox_image).id


@needs_layers
def test_pull_unpacks_each_layer(engine: Engine, other: Engine, registry) -> None:
    record = small_image(engine)
    engine.images.push("x:1", f"{registry.host}/x:1", **PLAIN)

    pulled = other.images.pull(f"{registry.host}/x:1", **PLAIN)

    layers = other.images.store.layers.layers(pulled.diff_ids)
    assert [layer.diff_id for layer in layers] == list(record.diff_ids)
    assert (layers[0].path / "etc/a").read_bytes() == b"first layer\n"
    assert (layers[1].path / "etc/b").stat().st_size == 3000


@needs_layers
def test_cli_output_is_docker_like(engine: Engine, registry, imod) -> None:
    small_image(engine)
    digest = engine.images.push("x:1", f"{registry.host}/x:latest", **PLAIN)
    engine.images.remove("x:1")
    ref = f"{registry.host}/x"

    first = imod("pull", "--tls-verify=false", ref).stdout.decode().splitlines()
    assert first[0] == "Using default tag: latest" or first[0].startswith("latest: Pulling from x")
    assert "latest: Pulling from x" in first
    assert sum(line.endswith((": Pull complete", ": Already exists")) for line in first) == 2, first
    assert first[-3:] == [f"Digest: {digest}", f"Status: Downloaded newer image for {ref}:latest", f"{ref}:latest"]

    again = imod("pull", "--tls-verify=false", ref).stdout.decode().splitlines()
    assert again[-2] == f"Status: Image is up to date for {ref}:latest"
    assert imod("pull", "-q", "--tls-verify=false", ref).stdout.decode() == f"{ref}:latest\n"

    # An image id needs a destination; the digest goes to stdout (-q) and to --digestfile.
    image_id = engine.images.get(f"{ref}:latest").id
    refused = imod("push", "--tls-verify=false", image_id, check=False)
    assert refused.returncode == 1 and b"give a destination" in refused.stderr
    digestfile = engine.paths.root.parent / "digest"
    pushed = imod("push", "-q", "--tls-verify=false", "--digestfile", str(digestfile), image_id, f"{registry.host}/y:2")
    assert pushed.stdout.decode() == f"{digest}\n"
    assert digestfile.read_text() == digest


def test_pull_by_digest(engine: Engine, other: Engine, registry) -> None:
    record = small_image(engine)
    digest = engine.images.push("x:1", f"{registry.host}/x:1", **PLAIN)

    pulled = other.images.pull(f"{registry.host}/x@{digest}", unpack=False, **PLAIN)

    assert pulled.id == record.id
    assert pulled.tags == ()
    assert other.images.get(f"{registry.host}/x@{digest}").id == record.id


def test_wrong_digest_in_reference_is_unknown(engine: Engine, other: Engine, registry) -> None:
    small_image(engine)
    engine.images.push("x:1", f"{registry.host}/x:1", **PLAIN)
    with pytest.raises(ManifestUnknown):
        other.images.pull(f"{registry.host}/x@sha256:{'0' * 64}", unpack=False, **PLAIN)


def test_chunked_upload_and_cross_repository_mount(engine: Engine, other: Engine, registry) -> None:
    record = craft_image(engine, "big:1", [{"data": os.urandom(300_000)}], level=0)
    engine.images.push("big:1", f"{registry.host}/a/big:1", chunk_size=64 * 1024, **PLAIN)
    assert registry.requests("PATCH", "/v2/a/big/blobs/uploads/") >= 4

    mark = registry.log_size()
    engine.images.push("big:1", f"{registry.host}/b/big:1", **PLAIN)

    assert registry.requests("POST", "mount=sha256", since=mark) == 2  # config and layer
    assert registry.requests("PATCH", "/blobs/uploads/", since=mark) == 0
    assert other.images.pull(f"{registry.host}/b/big:1", unpack=False, **PLAIN).id == record.id


def test_present_blobs_are_not_fetched_again(engine: Engine, other: Engine, registry) -> None:
    record = small_image(engine)
    engine.images.push("x:1", f"{registry.host}/x:1", **PLAIN)
    mark = registry.log_size()
    other.images.pull(f"{registry.host}/x:1", unpack=False, **PLAIN)
    assert registry.requests("GET", "/v2/x/blobs/", since=mark) == 3

    other.images.store.delete(record.id)  # the record goes, the blobs stay
    mark = registry.log_size()
    again = other.images.pull(f"{registry.host}/x:1", unpack=False, **PLAIN)

    assert again.id == record.id
    assert registry.requests("GET", "/v2/x/blobs/", since=mark) == 0
    assert registry.requests("GET", "/v2/x/manifests/1", since=mark) == 1


def test_push_skips_blobs_the_registry_has(engine: Engine, registry) -> None:
    small_image(engine)
    engine.images.push("x:1", f"{registry.host}/x:1", **PLAIN)
    mark = registry.log_size()
    engine.images.push("x:1", f"{registry.host}/x:2", **PLAIN)
    assert registry.requests("HEAD", "/v2/x/blobs/", since=mark) == 3
    assert registry.requests("POST", "/blobs/uploads/", since=mark) == 0
    assert registry.requests("GET", "/v2/ ", since=mark) == 1  # one ping, though three workers start at once


# -- peers -------------------------------------------------------------------------------


@pytest.mark.requires("skopeo")
def test_skopeo_reads_what_we_push(engine: Engine, registry, tmp_path: Path) -> None:
    record = small_image(engine)
    digest = engine.images.push("x:1", f"{registry.host}/x:1", **PLAIN)

    layout = tmp_path / "layout"
    subprocess.run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{registry.host}/x:1", f"oci:{layout}:x"],
                   check=True, capture_output=True)

    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest
    manifest = json.loads((layout / "blobs/sha256" / digest.split(":")[1]).read_bytes())
    assert manifest["config"]["digest"] == record.id


@pytest.mark.requires("skopeo", "umoci")
def test_we_pull_what_skopeo_pushed(other: Engine, registry, tmp_path: Path) -> None:
    layout, content = tmp_path / "umoci", tmp_path / "content"
    content.mkdir()
    (content / "hello.txt").write_text("made by umoci\n")
    for argv in (["umoci", "init", "--layout", str(layout)],
                 ["umoci", "new", "--image", f"{layout}:t"],
                 ["umoci", "insert", "--image", f"{layout}:t", str(content / "hello.txt"), "/hello.txt"],
                 ["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:t",
                  f"docker://{registry.host}/peer/img:t"]):
        subprocess.run(argv, check=True, capture_output=True)
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"]
    manifest = json.loads((layout / "blobs/sha256" / manifest_digest.split(":")[1]).read_bytes())

    pulled = other.images.pull(f"{registry.host}/peer/img:t", unpack=False, **PLAIN)

    assert pulled.id == manifest["config"]["digest"]
    assert pulled.manifest == manifest_digest
    assert [d.digest for d in other.images.store.manifest(pulled).layers] == [d["digest"] for d in manifest["layers"]]


def test_index_picks_the_host_platform(engine: Engine, other: Engine, registry) -> None:
    from intermodal.images.manifest import host_platform

    host_arch = host_platform()["architecture"]
    foreign_arch = "arm64" if host_arch != "arm64" else "amd64"
    repo = "multi"
    entries, config_of = [], {}
    with RegistryClient(registry.host, tls_verify=False) as client:
        for arch in (foreign_arch, host_arch):
            blobs: dict[str, bytes] = {}

            def put(data: bytes, blobs: dict[str, bytes] = blobs) -> str:
                digest = "sha256:" + hashlib.sha256(data).hexdigest()
                blobs[digest] = data
                return digest

            manifest, media_type = craft_documents(put, [{"arch": arch.encode()}], architecture=arch)
            for digest, data in blobs.items():
                client.upload_blob(repo, digest, len(data), lambda data=data: _BytesFile(data))
            digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
            client.put_manifest(repo, digest, manifest, media_type)
            config_of[arch] = json.loads(manifest)["config"]["digest"]
            entries.append({"mediaType": media_type, "digest": digest, "size": len(manifest),
                            "platform": {"os": "linux", "architecture": arch}})
        index = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}).encode()
        client.put_manifest(repo, "all", index, mt.OCI_INDEX)
    index_digest = "sha256:" + hashlib.sha256(index).hexdigest()

    native = other.images.pull(f"{registry.host}/{repo}:all", unpack=False, **PLAIN)
    assert native.id == config_of[host_arch]
    assert f"{registry.host}/{repo}@{index_digest}" in native.digests  # the tag's digest, as Docker records it

    foreign = other.images.pull(f"{registry.host}/{repo}:all", platform=f"linux/{foreign_arch}", unpack=False, **PLAIN)
    assert foreign.id == config_of[foreign_arch]


class _BytesFile:
    def __init__(self, data: bytes) -> None:
        import io

        self._io = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._io.read(n)

    def seek(self, pos: int) -> None:
        self._io.seek(pos)

    def close(self) -> None:
        self._io.close()

    def __enter__(self) -> _BytesFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- auth and TLS ------------------------------------------------------------------------


@pytest.mark.requires("htpasswd")
def test_login_with_htpasswd(engine: Engine, registry_factory, imod, tmp_path: Path) -> None:
    registry = registry_factory(users={"alice": "s3cret"})
    authfile = tmp_path / "auth.json"

    bad = imod("login", "--tls-verify=false", "--authfile", str(authfile), "-u", "alice", "-p", "wrong",
               registry.host, check=False)
    assert bad.returncode == 1
    assert bad.stderr.decode().startswith(f"Error: login to {registry.host} refused: wrong user name or password")
    assert not authfile.exists()

    good = imod("login", "--tls-verify=false", "--authfile", str(authfile), "-u", "alice", "--password-stdin",
                registry.host, input=b"s3cret\n")
    assert good.stdout.decode().strip() == "Login Succeeded!"
    auths = json.loads(authfile.read_text())["auths"]
    assert auths == {registry.host: {"auth": "YWxpY2U6czNjcmV0"}}  # base64("alice:s3cret")
    assert authfile.stat().st_mode & 0o777 == 0o600

    small_image(engine)
    with pytest.raises(AuthenticationError):
        engine.images.push("x:1", f"{registry.host}/x:1", authfile=tmp_path / "none.json", **PLAIN)
    engine.images.push("x:1", f"{registry.host}/x:1", authfile=authfile, **PLAIN)
    other = Engine(root=tmp_path / "other")
    with pytest.raises(AuthenticationError, match="imod login"):
        other.images.pull(f"{registry.host}/x:1", unpack=False, authfile=tmp_path / "none.json", **PLAIN)
    assert other.images.pull(f"{registry.host}/x:1", unpack=False, authfile=authfile, **PLAIN).tags

    assert imod("logout", "--authfile", str(authfile), registry.host).returncode == 0
    assert json.loads(authfile.read_text())["auths"] == {}
    assert imod("logout", "--authfile", str(authfile), registry.host, check=False).returncode == 1


@pytest.mark.requires("openssl")
def test_bearer_tokens_from_a_token_service(engine: Engine, other: Engine, registry_factory, token_server,
                                            tmp_path: Path) -> None:
    registry = registry_factory(token=token_server)
    small_image(engine)
    anonymous = tmp_path / "none.json"
    with pytest.raises(AuthenticationError, match="refused anonymous access"):
        engine.images.push("x:1", f"{registry.host}/x:1", authfile=anonymous, **PLAIN)
    with pytest.raises(AuthenticationError, match="refused the credentials of 'bob'"):
        engine.images.push("x:1", f"{registry.host}/x:1", credentials=("bob", "wrong"), **PLAIN)

    token_server.requests.clear()
    engine.images.push("x:1", f"{registry.host}/x:1", credentials=("bob", "b0b-pass"), **PLAIN)
    assert token_server.requests == [("bob", ("repository:x:pull,push",))]  # one token for every blob and the manifest

    token_server.requests.clear()
    pulled = other.images.pull(f"{registry.host}/x:1", unpack=False, credentials=("bob", "b0b-pass"), **PLAIN)
    assert pulled.id == engine.images.get("x:1").id
    assert token_server.requests == [("bob", ("repository:x:pull",))]

    # A mount asks for a token covering both repositories.
    token_server.requests.clear()
    engine.images.push("x:1", f"{registry.host}/y:1", credentials=("bob", "b0b-pass"), **PLAIN)
    assert ("bob", ("repository:x:pull", "repository:y:pull,push")) in token_server.requests
    assert registry.requests("POST", "mount=") == 3  # config and two layers


@pytest.mark.requires("openssl")
def test_tls_with_the_users_ca(engine: Engine, other: Engine, registry_factory, test_ca) -> None:
    registry = registry_factory(ca=test_ca)
    record = small_image(engine)

    with pytest.raises(RegistryError, match=r"certificate verify failed.*--cert-dir"):
        engine.images.push("x:1", f"{registry.host}/x:1")
    engine.images.push("x:1", f"{registry.host}/x:1", cert_dir=registry.cert_dir)

    assert other.images.pull(f"{registry.host}/x:1", unpack=False, cert_dir=registry.cert_dir).id == record.id
    other.images.store.delete(record.id)
    # --tls-verify=false talks TLS without verifying, before any fallback to http.
    assert other.images.pull(f"{registry.host}/x:1", unpack=False, tls_verify=False).id == record.id


# -- failures ------------------------------------------------------------------------------


def test_corrupted_blob_fails_and_stores_nothing(engine: Engine, other: Engine, registry) -> None:
    record = small_image(engine)
    engine.images.push("x:1", f"{registry.host}/x:1", **PLAIN)
    layer = engine.images.store.manifest(record).layers[1].digest
    path = registry.blob_path(layer)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    with pytest.raises(DigestMismatch, match=layer):
        other.images.pull(f"{registry.host}/x:1", unpack=False, **PLAIN)

    assert other.images.list() == []
    assert not other.images.store.blobs.has(layer)
    with pytest.raises(ImageNotFound):
        other.images.get(f"{registry.host}/x:1")


def test_unknown_tag_is_reported_like_docker(engine_root: Path, imod, registry) -> None:
    proc = imod("pull", "--tls-verify=false", f"{registry.host}/nothing/here:nope", check=False)
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert err.startswith(f"Error: manifest for {registry.host}/nothing/here:nope not found: ")
    assert "unknown" in err and "check the name and tag" in err


def test_unreachable_registry_is_a_clear_error(other: Engine) -> None:
    from tests.support.registry import free_port

    with pytest.raises(RegistryError, match="cannot reach registry"):
        other.images.pull(f"127.0.0.1:{free_port()}/x:1", unpack=False, retries=0, **PLAIN)


def test_transient_failures_are_retried(engine: Engine, other: Engine, registry) -> None:
    from tests.support.registry import FlakyProxy

    record = craft_image(engine, "x:1", [{"big": os.urandom(3 << 20)}], level=0)
    engine.images.push("x:1", f"{registry.host}/x:1", **PLAIN)
    # One worker: the config comes first (cut before any data, 503, 429, passed), then the layer (cut half-way).
    proxy = FlakyProxy(registry.host, ["cut", 503, 429, None, "cut"])
    try:
        pulled = other.images.pull(f"{proxy.host}/x:1", unpack=False, workers=1, **PLAIN)
        assert pulled.id == record.id
        assert proxy.faults == []
        assert sum("/blobs/" in path for path in proxy.seen) == 2 + 4  # two blobs, four failed tries
        assert [r for r in proxy.ranges if r] == ["bytes=1048576-"]  # the layer resumed after its first MiB

        other.images.store.delete(record.id)
        for digest in (record.id, *(d.digest for d in engine.images.store.manifest(record).layers)):
            other.images.store.blobs.delete(digest)
        proxy.faults = [502]
        with pytest.raises(RegistryError, match="502"):
            other.images.pull(f"{proxy.host}/x:1", unpack=False, retries=0, **PLAIN)
        assert other.images.list() == []
    finally:
        proxy.stop()


def test_pull_killed_half_way_then_completes(engine: Engine, registry, tmp_path: Path) -> None:
    mib = 1 << 20
    record = craft_image(engine, "large:1", [{"l0": os.urandom(40 * mib)}, {"l1": os.urandom(40 * mib)}], level=0)
    engine.images.push("large:1", f"{registry.host}/large:1", **PLAIN)
    root = tmp_path / "killed"
    ref = f"{registry.host}/large:1"
    if importlib.util.find_spec("intermodal.storage.layers") is not None:
        argv = [str(Path(sys.executable).parent / "imod"), "--root", str(root), "pull", "-q", "--tls-verify=false", ref]
    else:
        argv = [sys.executable, "-c", "import sys; from intermodal.engine import Engine; "
                "Engine(root=sys.argv[1]).images.pull(sys.argv[2], tls_verify=False, unpack=False)", str(root), ref]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            partial = [p for p in (root / "tmp").glob("blob-*") if p.stat().st_size > mib] \
                if (root / "tmp").is_dir() else []
            if partial:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.002)
    finally:
        if proc.poll() is None and time.monotonic() >= deadline:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the pull ended before it could be killed half-way"
    assert Engine(root=root).images.list() == []

    pulled = Engine(root=root).images.pull(ref, unpack=argv[0] != sys.executable, **PLAIN)

    assert pulled.id == record.id
    store = Engine(root=root).images.store
    for layer in store.manifest(pulled).layers:
        assert store.blobs.has(layer.digest)
    if argv[0] != sys.executable:
        assert [layer.diff_id for layer in store.layers.layers(pulled.diff_ids)] == list(record.diff_ids)
