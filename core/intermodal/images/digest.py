"""OCI content digests (`algorithm:hex`), only sha256 and sha512 accepted."""

from __future__ import annotations

import hashlib
import re

from intermodal.errors import InvalidArgument

_DIGEST = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")


def is_digest(value: str) -> bool:
    return bool(_DIGEST.match(value))


def check_digest(value: str) -> str:
    if not _DIGEST.match(value):
        raise InvalidArgument(
            f"invalid digest {value!r}: expected 'sha256:' followed by 64 lowercase hex digits"
        )
    return value


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hasher(digest: str):
    """A fresh hash object for the algorithm *digest* names."""
    algorithm = digest.split(":", 1)[0]
    return hashlib.new(algorithm)


def split(digest: str) -> tuple[str, str]:
    check_digest(digest)
    algorithm, hexpart = digest.split(":", 1)
    return algorithm, hexpart
