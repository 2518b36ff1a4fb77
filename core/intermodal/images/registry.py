"""An HTTP client for the Docker Registry HTTP API v2 / OCI distribution spec.

One `RegistryClient` talks to one registry host. It learns how the host wants
to be authenticated from the ``WWW-Authenticate`` challenge of ``GET /v2/``
(anonymous, Basic, or Bearer tokens from a token service, cached per scope),
retries transient failures with back-off, and turns every HTTP error into an
`intermodal.errors` class in one place, `_check`.

TLS follows podman: certificates are verified against the system CAs plus the
``*.crt`` files of ``--cert-dir`` (default ``/etc/containers/certs.d/HOST:PORT``,
then ``/etc/docker/certs.d/HOST:PORT``); ``tls_verify=False`` skips
verification and falls back to plain HTTP when the host does not speak TLS.

``requests`` is imported only when a client is made: `imod images` never pays
for it.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from intermodal.errors import AuthenticationError, ManifestUnknown, RegistryError
from intermodal.images import mediatypes as mt
from intermodal.records import Frozen, factory

USER_AGENT = "intermodal/0.1"
DOCKER_HUB_API = "registry-1.docker.io"
CERTS_DIRS = (Path("/etc/containers/certs.d"), Path("/etc/docker/certs.d"))
TIMEOUT = (10.0, 120.0)  # connect, read
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
DEFAULT_RETRIES = 4
TOKEN_LIFETIME = 60  # seconds, when the token service does not say (distribution spec)

Body = bytes | Callable[[], Any] | None


# -- pure parts ---------------------------------------------------------------


class Challenge(Frozen):
    scheme: str  # lower case: "basic" or "bearer"
    params: dict[str, str] = factory(dict)


# A scheme is a token followed by whitespace and a "name=" parameter; a
# parameter name is followed by "=" directly, so the two never mix up.
_CHALLENGE_START = re.compile(r"[\s,]*([A-Za-z][A-Za-z0-9_-]*)\s+(?=[A-Za-z0-9_-]+\s*=)")
_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` header (RFC 7235), several challenges allowed.

    ``Bearer realm="https://auth/token",service="reg",scope="repository:a:pull,push"``
    gives one Challenge("bearer", {...}); commas inside quotes stay in the value.
    """
    challenges: list[Challenge] = []
    pos = 0
    header = header.strip()
    while pos < len(header):
        match = _CHALLENGE_START.match(header, pos)
        if not match:
            # A bare scheme without parameters ("Basic").
            word = re.match(r"\s*,?\s*([A-Za-z][A-Za-z0-9_-]*)\s*(,|$)", header[pos:])
            if not word:
                break
            challenges.append(Challenge(word.group(1).lower()))
            pos += word.end()
            continue
        scheme = match.group(1).lower()
        pos = match.end()
        params: dict[str, str] = {}
        while pos < len(header):
            if _CHALLENGE_START.match(header, pos):
                break
            param = _PARAM.match(header, pos)
            if not param or param.end() == pos:
                break
            quoted, bare = param.group(2), param.group(3)
            value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
            params[param.group(1).lower()] = value
            pos = param.end()
        challenges.append(Challenge(scheme, params))
    return challenges


def pick_challenge(challenges: list[Challenge]) -> Challenge | None:
    """Bearer is preferred over Basic, as Docker does."""
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == scheme:
                return challenge
    return None


def api_host(domain: str) -> str:
    """The host that serves the API for a reference domain (docker.io is special)."""
    return DOCKER_HUB_API if domain == "docker.io" else domain


def repository_scope(path: str, *actions: str) -> str:
    return f"repository:{path}:{','.join(actions)}"


def error_details(resp: Any) -> tuple[str, str]:
    """(code, message) from a registry's JSON error body, or ("", "") when it has none."""
    try:
        doc = json.loads(resp.content or b"{}")
    except (ValueError, UnicodeDecodeError):
        return "", ""
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not errors or not isinstance(errors, list):
        return "", ""
    codes, messages = [], []
    for item in errors:
        if isinstance(item, dict):
            if item.get("code"):
                codes.append(str(item["code"]))
            if item.get("message"):
                messages.append(str(item["message"]))
    return ", ".join(codes), "; ".join(messages)


def _check(resp: Any, not_found: type[Exception] | None = ManifestUnknown, what: str = "") -> Any:
    """Return *resp* when it succeeded; otherwise raise the matching error with the URL.

    The one place where HTTP status and the registry's ``errors[].code/message``
    become `RegistryError`, `AuthenticationError` or *not_found*.
    """
    status = resp.status_code
    if 200 <= status < 300:
        return resp
    url = _redact(resp.url)
    code, message = error_details(resp)
    detail = code.lower().replace("_", " ") if code else ""
    if message and message.lower() != detail:
        detail = f"{detail}: {message}" if detail else message
    detail = detail or (resp.reason or f"HTTP {status}")
    subject = f"{what}: " if what else ""
    if status == 401:
        raise AuthenticationError(
            f"{subject}{detail} (401 from {url}); the registry wants credentials: "
            f"log in with `imod login {_host(url)}` or pass --creds/--authfile",
            status, url,
        )
    if status == 403:
        raise AuthenticationError(
            f"{subject}{detail} (403 from {url}); access denied: check that your account may use this repository",
            status, url,
        )
    if status == 404 and not_found is not None:
        if not_found is ManifestUnknown:
            text = f"{subject}{detail or 'manifest unknown'}; check the name and tag (404 from {url})"
        else:
            text = f"{subject}{detail} (404 from {url}); check the name and that the registry holds it"
        raise not_found(text, status, url) if issubclass(not_found, RegistryError) else not_found(text)
    if status == 429:
        hint = "the registry limits requests; wait and retry"
    elif status >= 500:
        hint = "the registry failed; retry later or check its logs"
    else:
        hint = "the registry refused the request"
    raise RegistryError(f"{subject}{detail} ({status} from {url}); {hint}", status, url)


def _redact(url: str) -> str:
    return re.sub(r"//[^/@]*@", "//", url or "")


def _host(url: str) -> str:
    return re.sub(r"^[a-z]+://", "", url).split("/", 1)[0]


def find_cert_dir(host: str, cert_dir: str | os.PathLike | None) -> Path | None:
    """The directory whose ``*.crt`` are trusted for *host*: explicit, then podman's, then Docker's."""
    if cert_dir is not None:
        path = Path(cert_dir)
        if not path.is_dir():
            raise RegistryError(f"--cert-dir {path} is not a directory; give a directory holding *.crt files")
        return path
    for base in CERTS_DIRS:
        if (base / host).is_dir():
            return base / host
    return None


# -- the client -----------------------------------------------------------------


class RegistryClient:
    """A connection to one registry host; safe to use from several threads.

    Raises RegistryError (and subclasses) from every method that talks HTTP.
    """

    def __init__(
        self,
        domain: str,
        *,
        tls_verify: bool = True,
        cert_dir: str | os.PathLike | None = None,
        credentials: tuple[str, str] | None = None,
        authfile: str | os.PathLike | None = None,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        self.domain = domain
        self.host = api_host(domain)
        self.tls_verify = tls_verify
        self.retries = retries
        self._cert_dir = find_cert_dir(self.host, cert_dir)
        self._credentials = credentials
        self._authfile = authfile
        self._credentials_loaded = credentials is not None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._ping_lock = threading.Lock()
        self._base: str | None = None
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}
        self._token_locks: dict[tuple[str, ...], threading.Lock] = {}
        self._sessions: list[Any] = []
        self._bundle: str | None = None
        self._verify: bool | str = self._tls_setting()

    # -- plumbing ----------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        if self._bundle:
            try:
                os.unlink(self._bundle)
            except FileNotFoundError:
                pass
            self._bundle = None

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def session(self) -> Any:
        """One requests.Session per thread: sessions are not documented thread-safe."""
        session = getattr(self._local, "session", None)
        if session is None:
            import requests

            session = requests.Session()
            session.headers["User-Agent"] = USER_AGENT
            adapter = requests.adapters.HTTPAdapter(pool_connections=2, pool_maxsize=4)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            session.verify = self._verify
            client_cert = self._client_cert()
            if client_cert:
                session.cert = client_cert
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def _tls_setting(self) -> bool | str:
        if not self.tls_verify:
            import urllib3

            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            return False
        if self._cert_dir is None:
            return True
        crts = sorted(self._cert_dir.glob("*.crt"))
        if not crts:
            return True
        # requests wants one CA file: the system's CAs plus the user's.
        parts = [_system_cas()] + [p.read_bytes() for p in crts]
        fd, self._bundle = tempfile.mkstemp(prefix="imod-ca-", suffix=".pem")
        with os.fdopen(fd, "wb") as f:
            f.write(b"\n".join(parts))
        return self._bundle

    def _client_cert(self) -> tuple[str, str] | None:
        # podman's cert dir convention: client.cert + client.key for mutual TLS.
        if self._cert_dir is None:
            return None
        for cert in sorted(self._cert_dir.glob("*.cert")):
            key = cert.with_suffix(".key")
            if key.exists():
                return str(cert), str(key)
        return None

    @property
    def credentials(self) -> tuple[str, str] | None:
        if not self._credentials_loaded:
            from intermodal.images.auth import load_credentials

            self._credentials = load_credentials(self.domain, self._authfile)
            self._credentials_loaded = True
        return self._credentials

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    @property
    def base(self) -> str:
        if self._base is None:
            with self._ping_lock:  # parallel workers ping once
                if self._base is None:
                    self.ping()
        assert self._base is not None
        return self._base

    # -- connection and auth -------------------------------------------------------

    def ping(self) -> None:
        """``GET /v2/``: find the scheme (https, or http when allowed) and the auth challenge."""
        import requests

        schemes = ["https"] if self.tls_verify else ["https", "http"]
        last: Exception | None = None
        for scheme in schemes:
            base = f"{scheme}://{self.host}"
            try:
                # One retry only: a registry that refuses connections is most likely not running.
                resp = self._send("GET", f"{base}/v2/", headers={}, retries=1)
            except requests.exceptions.SSLError as exc:
                last = exc
                if self.tls_verify:
                    raise self._tls_error(exc) from None
                continue
            except requests.exceptions.ConnectionError as exc:
                last = exc
                continue
            if resp.status_code == 401:
                challenge = pick_challenge(parse_challenges(resp.headers.get("WWW-Authenticate", "")))
                if challenge is None:
                    raise RegistryError(
                        f"{base}/v2/ asks for authentication with a scheme intermodal does not support "
                        f"({resp.headers.get('WWW-Authenticate', 'none')!r})", 401, f"{base}/v2/"
                    )
                self._challenge = challenge
            elif resp.status_code == 404:
                raise RegistryError(
                    f"{self.host} does not serve the registry API v2 (404 from {base}/v2/); check the host name",
                    404, f"{base}/v2/",
                )
            else:
                _check(resp, not_found=None, what="registry ping")
            self._base = base
            return
        raise RegistryError(
            f"cannot reach registry {self.host}: {_reason(last)}; check the host and port, "
            "and that the registry runs" + ("" if self.tls_verify else " (tried https and http)"),
            None, f"https://{self.host}/v2/",
        )

    def _tls_error(self, exc: Exception) -> RegistryError:
        where = f" (trusted CAs: system plus {self._cert_dir})" if self._cert_dir else ""
        return RegistryError(
            f"TLS to {self.host} failed: {_reason(exc)}{where}; put the registry's CA as *.crt into "
            f"--cert-dir DIR (or /etc/containers/certs.d/{self.host}/), or use --tls-verify=false "
            "for a local registry you trust",
            None, f"https://{self.host}/v2/",
        )

    def auth_headers(self, scopes: tuple[str, ...], *, refresh: bool = False) -> dict[str, str]:
        challenge = self._challenge
        if challenge is None:
            return {}
        if challenge.scheme == "basic":
            creds = self.credentials
            if creds is None:
                return {}
            token = base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
            return {"Authorization": f"Basic {token}"}
        return {"Authorization": f"Bearer {self._token(scopes, refresh=refresh)}"}

    def _token(self, scopes: tuple[str, ...], *, refresh: bool = False) -> str:
        key = tuple(sorted(scopes))
        with self._lock:
            cached = self._tokens.get(key)
            fetching = self._token_locks.setdefault(key, threading.Lock())
        if cached and not refresh and cached[1] > time.monotonic():
            return cached[0]
        # One fetch per scope at a time: parallel blob workers share the token.
        with fetching:
            with self._lock:
                newer = self._tokens.get(key)
            if newer and newer is not cached and newer[1] > time.monotonic():
                return newer[0]
            token, lifetime = self._fetch_token(key)
            with self._lock:
                # Renew a little early so a token does not expire between check and use.
                self._tokens[key] = (token, time.monotonic() + max(lifetime - 10, lifetime / 2))
        return token

    def _fetch_token(self, scopes: tuple[str, ...]) -> tuple[str, float]:
        assert self._challenge is not None
        params = self._challenge.params
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"{self.host} asks for a bearer token but names no token service (realm)")
        query: list[tuple[str, str]] = []
        if params.get("service"):
            query.append(("service", params["service"]))
        query.extend(("scope", s) for s in scopes)
        creds = self.credentials
        auth = None
        if creds is not None:
            query.append(("account", creds[0]))
            auth = creds
        resp = self._send("GET", realm, params=query, auth=auth, headers={})
        if resp.status_code in (401, 403):
            raise AuthenticationError(
                f"the token service {_redact(realm)} refused "
                + (f"the credentials of {creds[0]!r}" if creds else "anonymous access")
                + f" for {' '.join(scopes) or 'login'}; check user name and password with `imod login {self.domain}`",
                resp.status_code, _redact(resp.url),
            )
        _check(resp, not_found=RegistryError, what="token request")
        try:
            doc = resp.json()
            token = doc.get("token") or doc.get("access_token")
            lifetime = float(doc.get("expires_in") or TOKEN_LIFETIME)
        except (ValueError, AttributeError):
            token = None
        if not token:
            raise RegistryError(f"the token service {_redact(realm)} answered without a token", resp.status_code, realm)
        return token, lifetime

    # -- requests with auth and retries -----------------------------------------

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        scopes: tuple[str, ...] = (),
        data: Body = None,
        headers: dict[str, str] | None = None,
        params: Any = None,
        stream: bool = False,
        allow_redirects: bool = True,
    ) -> Any:
        """Send with auth for *scopes*; on 401 renew the token once; retry transient failures.

        *data* is bytes or a callable returning a fresh body (a file), so a retry
        can send it again. The response is returned unchecked: pass it to `_check`.
        """
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        extra = dict(headers or {})
        resp = self._send(method, url, data=data, params=params, stream=stream, allow_redirects=allow_redirects,
                          headers={**extra, **self.auth_headers(scopes)})
        challenge = None
        if resp.status_code == 401:
            # A new challenge (another scope, or a registry whose /v2/ was open): learn it, ask once more.
            challenge = pick_challenge(parse_challenges(resp.headers.get("WWW-Authenticate", "")))
        if challenge is not None:
            self._challenge = challenge
            resp.close()
            resp = self._send(method, url, data=data, params=params, stream=stream, allow_redirects=allow_redirects,
                              headers={**extra, **self.auth_headers(scopes, refresh=True)})
        return resp

    def _send(self, method: str, url: str, *, data: Body = None, headers: dict[str, str], retries: int | None = None,
              **kwargs: Any) -> Any:
        import requests

        retries = self.retries if retries is None else min(retries, self.retries)
        attempt = 0
        while True:
            body = data() if callable(data) else data
            try:
                # verify given per request: requests lets REQUESTS_CA_BUNDLE override session.verify.
                resp = self.session.request(method, url, data=body, headers=headers, timeout=TIMEOUT,
                                            verify=self._verify, **kwargs)
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                    requests.exceptions.ChunkedEncodingError) as exc:
                if isinstance(exc, requests.exceptions.SSLError) or attempt >= retries:
                    raise
                self._pause(attempt, None)
            else:
                if resp.status_code not in RETRY_STATUS or attempt >= retries:
                    return resp
                self._pause(attempt, resp.headers.get("Retry-After"))
                resp.close()
            finally:
                if hasattr(body, "close"):
                    body.close()
            attempt += 1

    @staticmethod
    def _pause(attempt: int, retry_after: str | None) -> None:
        delay = min(0.25 * (2**attempt), 8.0)
        if retry_after and retry_after.isdigit():
            delay = min(float(retry_after), 30.0)
        time.sleep(delay * (0.75 + random.random() / 2))

    def check(self, resp: Any, not_found: type[Exception] | None = ManifestUnknown, what: str = "") -> Any:
        try:
            return _check(resp, not_found, what)
        finally:
            if not (200 <= resp.status_code < 300):
                resp.close()

    def connection_error(self, exc: Exception, what: str) -> RegistryError:
        return RegistryError(
            f"{what}: connection to {self.host} failed after {self.retries + 1} attempts: {_reason(exc)}; "
            "check the network and the registry, then retry",
            None, self._base,
        )

    # -- the API -------------------------------------------------------------------

    def login(self) -> None:
        """Check the credentials against the registry (as `docker login` does).

        Raises AuthenticationError when they are refused.
        """
        self.ping()
        if self._challenge is None:
            return  # an open registry accepts anybody
        if self._challenge.scheme == "bearer":
            self._token((), refresh=True)
            return
        resp = self._call("GET", "/v2/", what=f"login to {self.domain}")
        if resp.status_code == 401:
            user = self.credentials[0] if self.credentials else ""
            raise AuthenticationError(
                f"login to {self.domain} refused: wrong user name or password for {user!r} "
                f"(401 from {_redact(resp.url)}); check them and retry", 401, _redact(resp.url))
        self.check(resp, not_found=None, what=f"login to {self.domain}")

    def get_manifest(self, repository: str, reference: str, *,
                     accept: str = mt.ACCEPT_MANIFEST) -> tuple[bytes, str, str]:
        """(bytes, media type, digest header or '') of a manifest or index by tag or digest."""
        resp = self._call("GET", f"/v2/{repository}/manifests/{reference}",
                          scopes=(repository_scope(repository, "pull"),),
                          headers={"Accept": accept}, what=f"manifest {repository}:{reference}")
        self.check(resp, ManifestUnknown, what=f"manifest for {self.domain}/{repository}:{reference} not found")
        content_type = resp.headers.get("Content-Type", "").split(";", 1)[0].strip()
        return resp.content, content_type, resp.headers.get("Docker-Content-Digest", "")

    def open_blob(self, repository: str, digest: str, *, start: int = 0) -> Any:
        """A streaming response for a blob (follow its redirect to storage)."""
        # identity: the blob's bytes are what its digest covers; no transport compression.
        headers = {"Accept-Encoding": "identity"}
        if start:
            headers["Range"] = f"bytes={start}-"
        resp = self._call("GET", f"/v2/{repository}/blobs/{digest}", scopes=(repository_scope(repository, "pull"),),
                          headers=headers, stream=True, what=f"blob {digest}")
        from intermodal.errors import BlobNotFound

        return self.check(resp, BlobNotFound, what=f"blob {digest} of {self.domain}/{repository}")

    def has_blob(self, repository: str, digest: str, *, push: bool = False) -> bool:
        actions = ("pull", "push") if push else ("pull",)
        resp = self._call("HEAD", f"/v2/{repository}/blobs/{digest}",
                          scopes=(repository_scope(repository, *actions),), what=f"blob {digest}")
        if resp.status_code == 404:
            return False
        self.check(resp, None, what=f"checking blob {digest}")
        return True

    def mount_blob(self, repository: str, digest: str, source: str) -> str | None:
        """Cross-repository mount; None when done, else the upload URL the registry opened instead."""
        scopes = (repository_scope(repository, "pull", "push"), repository_scope(source, "pull"))
        resp = self._call("POST", f"/v2/{repository}/blobs/uploads/", scopes=scopes,
                          params={"mount": digest, "from": source}, what=f"mounting blob {digest}")
        self.check(resp, RegistryError, what=f"mounting blob {digest} from {source}")
        if resp.status_code == 201:
            return None
        return self._location(resp)

    def start_upload(self, repository: str) -> str:
        resp = self._call("POST", f"/v2/{repository}/blobs/uploads/",
                          scopes=(repository_scope(repository, "pull", "push"),), what="starting an upload")
        self.check(resp, RegistryError, what=f"starting a blob upload to {repository}")
        return self._location(resp)

    def upload_blob(
        self,
        repository: str,
        digest: str,
        size: int,
        opener: Callable[[], Any],
        *,
        location: str | None = None,
        chunk_size: int | None = None,
    ) -> None:
        """Upload a blob: one PUT, or PATCH chunks of *chunk_size* then the closing PUT.

        *opener* returns a fresh readable file positioned at the start.
        """
        scopes = (repository_scope(repository, "pull", "push"),)
        location = location or self.start_upload(repository)
        if chunk_size is None or size <= chunk_size:
            resp = self._call("PUT", _with_query(location, digest=digest), scopes=scopes, data=opener,
                              headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                              what=f"uploading blob {digest}")
            self.check(resp, RegistryError, what=f"uploading blob {digest}")
            return
        offset = 0
        while offset < size:
            length = min(chunk_size, size - offset)
            start = offset

            def chunk(start: int = start, length: int = length) -> bytes:
                with opener() as f:
                    f.seek(start)
                    return f.read(length)

            resp = self._call("PATCH", location, scopes=scopes, data=chunk, what=f"uploading blob {digest}",
                              headers={"Content-Type": "application/octet-stream", "Content-Length": str(length),
                                       "Content-Range": f"{start}-{start + length - 1}"})
            self.check(resp, RegistryError, what=f"uploading a chunk of blob {digest}")
            location = self._location(resp)
            offset += length
        resp = self._call("PUT", _with_query(location, digest=digest), scopes=scopes, data=b"",
                          headers={"Content-Length": "0"}, what=f"closing the upload of {digest}")
        self.check(resp, RegistryError, what=f"closing the upload of blob {digest}")

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        """PUT a manifest with its exact bytes; returns the digest the registry reports."""
        resp = self._call("PUT", f"/v2/{repository}/manifests/{reference}",
                          scopes=(repository_scope(repository, "pull", "push"),), data=data,
                          headers={"Content-Type": media_type}, what=f"manifest {repository}:{reference}")
        self.check(resp, RegistryError, what=f"pushing the manifest of {self.domain}/{repository}:{reference}")
        return resp.headers.get("Docker-Content-Digest", "")

    def _call(self, method: str, path: str, *, what: str, **kwargs: Any) -> Any:
        import requests

        try:
            return self.request(method, path, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise self._tls_error(exc) from None
        except requests.exceptions.RequestException as exc:
            raise self.connection_error(exc, what) from None

    def _location(self, resp: Any) -> str:
        location = resp.headers.get("Location")
        if not location:
            raise RegistryError(f"the registry answered {resp.status_code} without a Location header", resp.status_code,
                                _redact(resp.url))
        if "://" not in location:
            location = self.base + (location if location.startswith("/") else "/" + location)
        return location


def _system_cas() -> bytes:
    for candidate in (os.environ.get("REQUESTS_CA_BUNDLE"), os.environ.get("SSL_CERT_FILE"),
                      "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and os.path.isfile(candidate):
            return Path(candidate).read_bytes()
    import certifi

    return Path(certifi.where()).read_bytes()


def _with_query(url: str, **params: str) -> str:
    from urllib.parse import urlencode

    return url + ("&" if "?" in url else "?") + urlencode(params)


def _reason(exc: Exception | None) -> str:
    if exc is None:
        return "no answer"
    text = str(exc)
    # urllib3 nests the cause deep inside; keep the innermost readable part.
    match = re.search(r"\[SSL: [A-Z_]+\][^(')\"]*|Connection refused|Name or service not known|timed out", text)
    return match.group(0).strip() if match else text.splitlines()[0][:300]


def stream_chunks(resp: Any, size: int = 1 << 20) -> Iterable[bytes]:
    """The body of a streaming response in large chunks (a Content-Encoding, if any, undone)."""
    return resp.raw.stream(size, decode_content=True)
