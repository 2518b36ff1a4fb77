"""A real distribution registry (Debian's docker-registry) on 127.0.0.1 for tests.

`start_registry` runs ``/usr/bin/docker-registry serve CONFIG`` at a free port
with its storage in a temp dir, optionally behind htpasswd (Basic auth) and
TLS with a CA made here with openssl; it waits for the registry with a
bounded loop and is stopped by PID. Fixtures: ``registry`` (plain http),
``registry_factory`` (any number, any options), ``test_ca``.

Also helpers to craft small images without the layer store: `craft_image`
writes gzip layers, config and manifest into an engine's blob store and
records the image unpacked=False.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import signal
import socket
import ssl
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REGISTRY_BIN = "/usr/bin/docker-registry"
START_TIMEOUT = 15.0


@dataclass
class TestCA:
    __test__ = False  # not a test class, despite the name

    dir: Path
    cert: Path
    key: Path

    def server_cert(self, dest: Path, ip: str = "127.0.0.1") -> tuple[Path, Path]:
        """A certificate for *ip*, signed by this CA."""
        dest.mkdir(parents=True, exist_ok=True)
        key, csr, crt, ext = dest / "server.key", dest / "server.csr", dest / "server.crt", dest / "server.ext"
        ext.write_text(f"subjectAltName=IP:{ip}\nbasicConstraints=critical,CA:FALSE\n"
                       "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", key, "-out", csr, "-subj", f"/CN={ip}")
        _openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key, "-CAcreateserial",
                 "-out", crt, "-days", "2", "-extfile", ext)
        return crt, key


def make_ca(dest: Path) -> TestCA:
    dest.mkdir(parents=True, exist_ok=True)
    cert, key = dest / "ca.crt", dest / "ca.key"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=intermodal test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return TestCA(dest, cert, key)


def _openssl(*args: object) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    dir: Path
    proc: subprocess.Popen
    tls: bool = False
    ca: TestCA | None = None
    users: dict[str, str] = field(default_factory=dict)

    @property
    def storage(self) -> Path:
        return self.dir / "storage"

    @property
    def log(self) -> Path:
        return self.dir / "registry.log"

    @property
    def cert_dir(self) -> Path | None:
        """A directory with the CA as ``ca.crt``, as `--cert-dir` wants it."""
        if self.ca is None:
            return None
        path = self.dir / "certs.d"
        path.mkdir(exist_ok=True)
        (path / "ca.crt").write_bytes(self.ca.cert.read_bytes())
        return path

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def blob_path(self, digest: str) -> Path:
        algorithm, hexpart = digest.split(":", 1)
        return self.storage / "docker/registry/v2/blobs" / algorithm / hexpart[:2] / hexpart / "data"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def requests(self, method: str, fragment: str, since: int = 0) -> int:
        """How many access-log lines after byte *since* show `METHOD ...fragment`."""
        text = self.log.read_bytes()[since:].decode(errors="replace")
        return sum(1 for line in text.splitlines() if f'"{method} ' in line and fragment in line)

    def log_size(self) -> int:
        return self.log.stat().st_size

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_registry(workdir: Path, *, ca: TestCA | None = None, users: dict[str, str] | None = None,
                   token: TokenServer | None = None) -> Registry:
    """Start a registry in *workdir*; TLS when *ca* is given, htpasswd when *users* is, bearer tokens with *token*."""
    workdir.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):
        port = free_port()
        config = _config(workdir, port, ca, users or {}, token)
        path = workdir / "config.yml"
        path.write_text(json.dumps(config))  # JSON is YAML
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        with open(workdir / "registry.log", "ab") as log:
            proc = subprocess.Popen([REGISTRY_BIN, "serve", str(path)], stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env)
        reg = Registry(f"127.0.0.1:{port}", workdir, proc, tls=ca is not None, ca=ca, users=dict(users or {}))
        if _wait_ready(reg):
            return reg
        reg.stop()
        if attempt == 2:
            raise RuntimeError(f"docker-registry did not start; its log:\n{reg.log_text()[-3000:]}")
    raise AssertionError("unreachable")


def _config(workdir: Path, port: int, ca: TestCA | None, users: dict[str, str], token: TokenServer | None) -> dict:
    config: dict = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": str(workdir / "storage")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": os.urandom(16).hex()},
    }
    if ca is not None:
        crt, key = ca.server_cert(workdir / "tls")
        config["http"]["tls"] = {"certificate": str(crt), "key": str(key)}
    if users:
        lines = []
        for user, password in users.items():
            out = subprocess.run(["htpasswd", "-Bbn", user, password], check=True, capture_output=True, text=True)
            lines.append(out.stdout.strip())
        htpasswd = workdir / "htpasswd"
        htpasswd.write_text("\n".join(lines) + "\n")
        config["auth"] = {"htpasswd": {"realm": "intermodal-test", "path": str(htpasswd)}}
    if token is not None:
        config["auth"] = {"token": {"realm": token.realm, "service": token.service, "issuer": token.issuer,
                                    "rootcertbundle": str(token.cert)}}
    return config


def _wait_ready(reg: Registry) -> bool:
    context = None
    if reg.tls:
        context = ssl.create_default_context(cafile=str(reg.ca.cert))
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if reg.proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{reg.url}/v2/", timeout=2, context=context):
                return True
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    return False


# -- a bearer token service (the distribution "token" auth) -------------------------------


class TokenServer:
    """A token service on 127.0.0.1 that signs JWTs (RS256, openssl) the registry trusts.

    It grants every requested action to the users it knows (HTTP Basic on the
    token request) and refuses anonymous requests; ``requests`` records the
    scopes of each token it issued, so tests can see the client's token cache.
    """

    service = "intermodal-test-registry"
    issuer = "intermodal-test-issuer"

    def __init__(self, workdir: Path, users: dict[str, str]) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        workdir.mkdir(parents=True, exist_ok=True)
        self.users = users
        self.key, self.cert = workdir / "token.key", workdir / "token.crt"
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key, "-out", self.cert,
                 "-days", "2", "-subj", "/CN=intermodal test token signer")
        der = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-outform", "DER"], check=True,
                             capture_output=True).stdout
        self._x5c = base64.b64encode(der).decode()
        self.requests: list[tuple[str | None, tuple[str, ...]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._handle(self)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self._httpd.server_address[1]}/token"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def _handle(self, handler) -> None:
        from urllib.parse import parse_qs, urlparse

        query = parse_qs(urlparse(handler.path).query)
        scopes = tuple(query.get("scope", []))
        user = self._user(handler.headers.get("Authorization", ""))
        self.requests.append((user, scopes))
        if user is None:
            handler.send_response(401)
            handler.send_header("Content-Type", "application/json")
            handler.end_headers()
            handler.wfile.write(b'{"details": "bad or missing credentials"}')
            return
        body = json.dumps({"token": self._token(user, scopes), "expires_in": 300}).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _user(self, header: str) -> str | None:
        if not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user if self.users.get(user) == password else None

    def _token(self, user: str, scopes: tuple[str, ...]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": user, "aud": self.service, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": os.urandom(8).hex(), "access": access}
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)], input=signing_input.encode(),
                                   check=True, capture_output=True).stdout
        return f"{signing_input}.{_b64url(signature)}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def token_server(tmp_path: Path) -> Iterator[TokenServer]:
    if not _has("openssl"):
        pytest.skip("needs openssl")
    server = TokenServer(tmp_path / "token", {"bob": "b0b-pass"})
    try:
        yield server
    finally:
        server.stop()


# -- a proxy that fails on purpose ------------------------------------------------------------


class FlakyProxy:
    """An HTTP proxy on 127.0.0.1 in front of a registry that breaks blob downloads on purpose.

    ``faults`` is consumed one per blob GET: ``"cut"`` sends half the body then
    closes the connection, a number answers with that status, None passes the
    request through, as every request does once the list is empty.
    """

    def __init__(self, upstream: str, faults: list[str | int | None]) -> None:
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.faults = list(faults)
        self.seen: list[str] = []
        self.ranges: list[str | None] = []  # the Range header of each request
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy.seen.append(self.path)
                proxy.ranges.append(self.headers.get("Range"))
                fault = proxy.faults.pop(0) if "/blobs/" in self.path and proxy.faults else None
                if isinstance(fault, int):
                    self.send_response(fault)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                conn = http.client.HTTPConnection(upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request("GET", self.path, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                conn.close()
                self.send_response(resp.status)
                for key, value in resp.getheaders():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if fault == "cut":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)


# -- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    if not _has("openssl"):
        pytest.skip("needs openssl")
    return make_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def registry_factory(tmp_path: Path) -> Iterator:
    """``start(tls=False, users=None, ca=None) -> Registry``; every one is stopped after the test."""
    if not _has("registry"):
        pytest.skip("needs docker-registry (scripts/setup installs it)")
    started: list[Registry] = []

    def start(*, ca: TestCA | None = None, users: dict[str, str] | None = None,
              token: TokenServer | None = None) -> Registry:
        if users and not _has("htpasswd"):
            pytest.skip("needs htpasswd (apache2-utils)")
        reg = start_registry(tmp_path / f"registry{len(started)}", ca=ca, users=users, token=token)
        started.append(reg)
        return reg

    try:
        yield start
    finally:
        for reg in started:
            reg.stop()


@pytest.fixture
def registry(registry_factory) -> Registry:
    return registry_factory()


def _has(capability: str) -> bool:
    from tests.support.capabilities import has

    return has(capability)


# -- crafted images -------------------------------------------------------------------


def layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1700000000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def craft_image(engine, reference: str, layers: list[dict[str, bytes]], *, architecture: str = "amd64",
                level: int = 1, unpack: bool = False, media: str = "oci"):
    """An image of gzip layers made of *layers* (name -> content), recorded in *engine*'s store.

    Returns the ImageRecord. Independent of the layer store when unpack is False.
    """
    from intermodal.images import reference as refs

    manifest_bytes, media_type = craft_documents(engine.images.store.blobs.put, layers, architecture=architecture,
                                                 level=level, media=media)
    return engine.images.store.add(manifest_bytes, media_type, tags=[refs.parse(reference)], unpack=unpack)


def craft_documents(put, layers: list[dict[str, bytes]], *, architecture: str = "amd64", level: int = 1,
                    media: str = "oci") -> tuple[bytes, str]:
    """Write the blobs of an image through *put(bytes) -> digest*; return (manifest bytes, media type)."""
    from intermodal.images import mediatypes as mt

    descriptors, diff_ids = [], []
    layer_type = mt.OCI_LAYER_GZIP if media == "oci" else mt.DOCKER_LAYER_GZIP
    for files in layers:
        tar = layer_tar(files)
        blob = gzip.compress(tar, compresslevel=level, mtime=0)
        diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
        descriptors.append({"mediaType": layer_type, "digest": put(blob), "size": len(blob)})
    config = json.dumps({
        "architecture": architecture, "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }).encode()
    config_type = mt.OCI_CONFIG if media == "oci" else mt.DOCKER_CONFIG
    manifest_type = mt.OCI_MANIFEST if media == "oci" else mt.DOCKER_MANIFEST
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": manifest_type,
        "config": {"mediaType": config_type, "digest": put(config), "size": len(config)},
        "layers": descriptors,
    }, indent=3).encode()
    return manifest, manifest_type
