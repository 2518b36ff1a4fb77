"""Registry credentials in the ``auth.json`` format Docker and podman share.

``{"auths": {"host:port": {"auth": base64("user:password")}}}``. Written to
``--authfile``, else ``$REGISTRY_AUTH_FILE``, else podman's default
(``$XDG_RUNTIME_DIR/containers/auth.json``, ``/run/containers/<uid>/auth.json``
without it). Read from the same file, falling back to
``~/.config/containers/auth.json`` and Docker's ``~/.docker/config.json``, so
a `docker login` made earlier is honoured.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import Any

from intermodal.errors import InvalidArgument, NotFound
from intermodal.fsutil import atomic_write

DOCKER_HUB_KEYS = ("docker.io", "index.docker.io", "registry-1.docker.io")


def default_authfile() -> Path:
    """Where `imod login` writes: the same file podman uses."""
    env = os.environ.get("REGISTRY_AUTH_FILE")
    if env:
        return Path(env)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "containers" / "auth.json"
    return Path(f"/run/containers/{os.getuid()}/auth.json")


def read_paths(authfile: str | os.PathLike | None = None) -> list[Path]:
    """Files consulted for credentials, first match wins."""
    if authfile is not None:
        return [Path(authfile)]
    home = Path(os.environ.get("HOME") or Path.home())
    config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return [default_authfile(), config / "containers" / "auth.json", home / ".docker" / "config.json"]


def normalize_key(key: str) -> str:
    """``https://index.docker.io/v1/`` -> ``docker.io``; ``http://host:5000`` -> ``host:5000``."""
    key = key.strip()
    for prefix in ("https://", "http://"):
        if key.startswith(prefix):
            key = key[len(prefix):]
            # With a scheme, what follows the host is an API path (/v1/, /v2/), never a repository.
            key = key.split("/", 1)[0]
    key = key.rstrip("/")
    return "docker.io" if key in DOCKER_HUB_KEYS else key


def decode_entry(entry: Any, where: str) -> tuple[str, str] | None:
    """(user, password) of one ``auths`` entry, None when it holds none."""
    if not isinstance(entry, dict):
        return None
    if entry.get("auth"):
        try:
            text = base64.b64decode(entry["auth"], validate=False).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidArgument(f"{where}: the 'auth' value is not base64 of user:password; log in again") from None
        user, sep, password = text.partition(":")
        if not sep:
            raise InvalidArgument(f"{where}: the 'auth' value has no ':' between user and password; log in again")
        return user, password
    if entry.get("username") and "password" in entry:
        return str(entry["username"]), str(entry["password"])
    return None


def encode_entry(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_bytes() or b"{}")
    except FileNotFoundError:
        return {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"{path} is not valid JSON ({exc}); fix or remove it, then log in again") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{path} must hold a JSON object with an 'auths' map; fix or remove it")
    return doc


def find_entry(doc: dict[str, Any], domain: str) -> str | None:
    """The key in ``auths`` that holds credentials for *domain*."""
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        return None
    wanted = normalize_key(domain)
    if wanted in auths:
        return wanted
    for key in auths:
        if normalize_key(key) == wanted:
            return key
    return None


def load_credentials(domain: str, authfile: str | os.PathLike | None = None) -> tuple[str, str] | None:
    for path in read_paths(authfile):
        doc = _read(path)
        key = find_entry(doc, domain)
        if key is not None:
            creds = decode_entry(doc["auths"][key], f"{path} auths[{key!r}]")
            if creds is not None:
                return creds
    return None


def save_credentials(domain: str, user: str, password: str, authfile: str | os.PathLike | None = None) -> Path:
    """Store the credentials (mode 0600), keeping every other entry of the file."""
    path = Path(authfile) if authfile is not None else default_authfile()
    doc = _read(path)
    auths = doc.get("auths") if isinstance(doc.get("auths"), dict) else {}
    old = find_entry({"auths": auths}, domain)
    if old is not None:
        del auths[old]
    auths[normalize_key(domain)] = encode_entry(user, password)
    doc["auths"] = auths
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, (json.dumps(doc, indent="\t") + "\n").encode(), mode=0o600)
    return path


def remove_credentials(domain: str | None, authfile: str | os.PathLike | None = None) -> Path:
    """Forget the credentials of *domain* (all of them when None).

    Raises NotFound when there were none for *domain*.
    """
    path = Path(authfile) if authfile is not None else default_authfile()
    doc = _read(path)
    auths = doc.get("auths") if isinstance(doc.get("auths"), dict) else {}
    if domain is None:
        doc["auths"] = {}
    else:
        key = find_entry({"auths": auths}, domain)
        if key is None:
            raise NotFound(f"not logged in to {domain} (no entry in {path}); nothing to log out from")
        del auths[key]
        doc["auths"] = auths
    if path.exists():
        atomic_write(path, (json.dumps(doc, indent="\t") + "\n").encode(), mode=0o600)
    return path


def login(
    domain: str,
    user: str,
    password: str,
    *,
    authfile: str | os.PathLike | None = None,
    tls_verify: bool = True,
    cert_dir: str | os.PathLike | None = None,
) -> Path:
    """Check the credentials against the registry, then save them; returns the file written.

    Raises AuthenticationError when the registry refuses them (nothing is saved),
    RegistryError when it cannot be reached.
    """
    from intermodal.images.registry import RegistryClient

    if not user:
        raise InvalidArgument("a user name is needed to log in: pass --username/-u")
    with RegistryClient(domain, tls_verify=tls_verify, cert_dir=cert_dir, credentials=(user, password)) as client:
        client.login()
    return save_credentials(domain, user, password, authfile)
