"""OCI content digests (`algorithm:hex`), only sha256 and sha512 accepted.

`imod run` checks a few digests and hashes a few small blobs (config,
manifest, layer chain ids): neither ``re`` patterns nor ``hashlib`` (which
loads OpenSSL, ~2 ms) are needed for that, so both wait until a case needs them.
"""

from __future__ import annotations

from intermodal.errors import InvalidArgument

_DIGEST = r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$"
_HEX = "0123456789abcdef"
# Below this size the builtin SHA-256 (~300 MB/s) is done before hashlib
# would have loaded OpenSSL (~2 ms; OpenSSL then hashes ~1.8 GB/s).
SMALL = 256 << 10


def is_digest(value: str) -> bool:
    # The usual well-formed sha256 digest without the regex; anything else is the regex's to judge.
    if isinstance(value, str) and len(value) == 71 and value.startswith("sha256:") and not value[7:].strip(_HEX):
        return True
    import re

    return bool(re.match(_DIGEST, value))


def check_digest(value: str) -> str:
    if not is_digest(value):
        raise InvalidArgument(
            f"invalid digest {value!r}: expected 'sha256:' followed by 64 lowercase hex digits"
        )
    return value


def sha256_digest(data: bytes) -> str:
    return "sha256:" + _sha256(len(data))(data).hexdigest()


def digest_of(data: bytes, algorithm: str) -> str:
    """``algorithm:hex`` of a blob held in memory (manifest, config, index)."""
    h = hasher(f"{algorithm}:", len(data))
    h.update(data)
    return f"{algorithm}:{h.hexdigest()}"


def hasher(digest: str, size: int | None = None):
    """A fresh hash object for the algorithm *digest* names, for *size* bytes when known."""
    algorithm = digest.split(":", 1)[0]
    if algorithm == "sha256" and size is not None:
        return _sha256(size)()
    import hashlib

    return hashlib.new(algorithm)


def split(digest: str) -> tuple[str, str]:
    check_digest(digest)
    algorithm, hexpart = digest.split(":", 1)
    return algorithm, hexpart


def _sha256(size: int):
    """The SHA-256 constructor for *size* bytes: the builtin module for small data, OpenSSL's for large."""
    if size < SMALL:
        try:
            from _sha256 import sha256  # CPython 3.11's builtin module (3.12+: _sha2)
        except ImportError:
            from hashlib import sha256
    else:
        from hashlib import sha256
    return sha256
