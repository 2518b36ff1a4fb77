"""Image references, parsed and normalised as Docker does.

`busybox` is `docker.io/library/busybox:latest`; `host:port/repo:tag`,
`repo@sha256:...` and `repo:tag@sha256:...` are accepted. The grammar is the
one of distribution/reference (reference.go).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from intermodal.errors import InvalidReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_NAMESPACE = "library"
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_PATH = rf"{_COMPONENT}(?:/{_COMPONENT})*"
_REFERENCE = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
_ANCHORED_DOMAIN = re.compile(rf"^{_DOMAIN}$")
_ID = re.compile(r"^(?:sha256:)?[a-f0-9]{64}$")
MAX_NAME = 255


@dataclass(frozen=True)
class Reference:
    """A normalised image reference; ``str()`` gives the full form."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """``domain/path``: the name without tag or digest."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar(self) -> str:
        """The short form Docker shows (``busybox:latest``, ``quay.io/x/y:1``)."""
        name = self.familiar_name
        if self.tag:
            name += f":{self.tag}"
        if self.digest:
            name += f"@{self.digest}"
        return name

    @property
    def familiar_name(self) -> str:
        if self.domain == DEFAULT_DOMAIN:
            prefix = OFFICIAL_NAMESPACE + "/"
            return self.path[len(prefix):] if self.path.startswith(prefix) else self.path
        return self.repository

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, None, digest)

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def looks_like_id(text: str) -> bool:
    return bool(_ID.match(text))


def parse(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise *text*; add ``:latest`` when it has neither tag nor digest.

    Raises InvalidReference with the reason and an example of a valid name.
    """
    if not isinstance(text, str) or not text:
        raise _invalid(text, "it is empty")
    if looks_like_id(text):
        raise _invalid(text, "a 64-hex-digit id cannot be used as a repository name")
    match = _REFERENCE.match(text)
    if not match:
        if text.lower() != text and _REFERENCE.match(_lower_path(text)):
            raise _invalid(text, "repository names must be lowercase")
        raise _invalid(text, "it does not follow [host[:port]/]name[:tag][@digest]")
    domain, path = _split_domain(match.group("domain"), match.group("path"))
    if len(f"{domain}/{path}") > MAX_NAME:
        raise _invalid(text, f"the name is longer than {MAX_NAME} characters")
    tag = match.group("tag")
    digest = match.group("digest")
    if digest is not None:
        from intermodal.images.digest import is_digest

        if not is_digest(digest):
            raise _invalid(text, "only sha256 and sha512 digests in lowercase hex are supported")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def parse_repository(text: str) -> Reference:
    """Parse a name that must carry neither tag nor digest (e.g. `push --repository`)."""
    ref = parse(text, default_tag=False)
    if ref.tag or ref.digest:
        raise _invalid(text, "a repository name without tag or digest is needed here")
    return ref


def _split_domain(domain: str | None, path: str) -> tuple[str, str]:
    # Docker treats the first component as a registry host only when it has
    # a dot, a port or is "localhost"; "library/busybox" stays on docker.io.
    if domain is not None and not ("." in domain or ":" in domain or domain == "localhost" or domain.startswith("[")):
        path = f"{domain}/{path}"
        domain = None
    if domain is None or domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"{OFFICIAL_NAMESPACE}/{path}"
    return domain, path


def _lower_path(text: str) -> str:
    head, sep, rest = text.partition("/")
    if sep and _ANCHORED_DOMAIN.match(head) and ("." in head or ":" in head or head == "localhost"):
        return head + "/" + rest.lower()
    return text.lower()


def _invalid(text: object, why: str) -> InvalidReference:
    return InvalidReference(
        f"invalid reference format {text!r}: {why} (example: registry.example:5000/team/app:1.2)"
    )
