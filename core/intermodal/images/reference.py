"""Image references, parsed and normalised as Docker does.

`busybox` is `docker.io/library/busybox:latest`; `host:port/repo:tag`,
`repo@sha256:...` and `repo:tag@sha256:...` are accepted. The grammar is the
one of distribution/reference (reference.go).
"""

from __future__ import annotations

from intermodal.errors import InvalidReference
from intermodal.records import Frozen

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_NAMESPACE = "library"
DEFAULT_TAG = "latest"

# Patterns as text: `re` compiles (and caches) them on first use, which the
# common names never reach (see `_plain`).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_PATH = rf"{_COMPONENT}(?:/{_COMPONENT})*"
_REFERENCE = (
    rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
_ANCHORED_DOMAIN = rf"^{_DOMAIN}$"
_ID = r"^(?:sha256:)?[a-f0-9]{64}$"
_HEX = "0123456789abcdef"
_LOWER_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
_TAG_CHARS = _LOWER_ALNUM + "ABCDEFGHIJKLMNOPQRSTUVWXYZ_.-"
MAX_NAME = 255


class Reference(Frozen):
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
    if isinstance(text, str):
        if len(text) < 64:  # the pattern needs 64 hex digits: a name is never an id
            return False
        hexpart = text[7:] if text.startswith("sha256:") else text
        if len(hexpart) == 64 and not hexpart.strip(_HEX):
            return True
    return bool(_match(_ID, text))


def parse(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise *text*; add ``:latest`` when it has neither tag nor digest.

    Raises InvalidReference with the reason and an example of a valid name.
    """
    if not isinstance(text, str) or not text:
        raise _invalid(text, "it is empty")
    if looks_like_id(text):
        raise _invalid(text, "a 64-hex-digit id cannot be used as a repository name")
    parts = _plain(text) or _parts(text)
    domain, path = _split_domain(parts[0], parts[1])
    if len(f"{domain}/{path}") > MAX_NAME:
        raise _invalid(text, f"the name is longer than {MAX_NAME} characters")
    tag, digest = parts[2], parts[3]
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


def _plain(text: str) -> tuple[str | None, str, str | None, None] | None:
    """The groups of the common ``name[/name...][:tag]`` with plain lowercase components, else None.

    What this accepts the pattern accepts too, with the same groups (the
    pattern's optional domain takes the first component whenever a ``/``
    follows it); everything else is left to the pattern.
    """
    name, colon, tag = text.partition(":")
    if colon and (not tag or len(tag) > 128 or tag[0] in ".-" or tag.strip(_TAG_CHARS)):
        return None
    components = name.split("/")
    for component in components:
        if not component or component.strip(_LOWER_ALNUM):
            return None
    domain = components[0] if len(components) > 1 else None
    path = name[len(domain) + 1:] if domain is not None else name
    return domain, path, tag if colon else None, None


def _parts(text: str) -> tuple[str | None, str, str | None, str | None]:
    match = _match(_REFERENCE, text)
    if not match:
        if text.lower() != text and _match(_REFERENCE, _lower_path(text)):
            raise _invalid(text, "repository names must be lowercase")
        raise _invalid(text, "it does not follow [host[:port]/]name[:tag][@digest]")
    return match.group("domain"), match.group("path"), match.group("tag"), match.group("digest")


def _match(pattern: str, text: str):
    import re  # its module cache keeps the compiled pattern

    return re.match(pattern, text)


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
    if sep and _match(_ANCHORED_DOMAIN, head) and ("." in head or ":" in head or head == "localhost"):
        return head + "/" + rest.lower()
    return text.lower()


def _invalid(text: object, why: str) -> InvalidReference:
    return InvalidReference(
        f"invalid reference format {text!r}: {why} (example: registry.example:5000/team/app:1.2)"
    )
