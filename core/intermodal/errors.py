"""The one error hierarchy of intermodal.

Catch :class:`IntermodalError` to catch every error the engine raises on
purpose. Each message says what went wrong and what to do next; front ends
(the CLI, Ansible modules, Salt) show ``str(err)`` unchanged and map the class
to an exit code or a failure.
"""

from __future__ import annotations

import errno as _errno
import os


class IntermodalError(Exception):
    """Root of every error intermodal raises deliberately."""

    exit_code = 125  # Docker's "the engine failed" code.


class NotFound(IntermodalError):
    """Something named by the user does not exist."""


class ImageNotFound(NotFound):
    pass


class ContainerNotFound(NotFound):
    pass


class NetworkNotFound(NotFound):
    pass


class VolumeNotFound(NotFound):
    pass


class BlobNotFound(NotFound):
    """A blob the store should hold is missing."""


class ManifestUnknown(ImageNotFound):
    """A registry does not know the requested tag or digest."""


class Conflict(IntermodalError):
    """The request collides with existing state."""


class AlreadyExists(Conflict):
    pass


class InUse(Conflict):
    """A resource is still used by another one."""


class LockTimeout(Conflict):
    """Another command holds a lock for longer than we wait."""


class InvalidArgument(IntermodalError):
    """The user's input is malformed."""


class InvalidReference(InvalidArgument):
    pass


class InvalidSpec(InvalidArgument):
    """An OCI runtime spec (config.json) or a container spec is invalid."""


class InvalidArchive(InvalidArgument):
    """A tar archive or image archive cannot be used as it is."""


class UnsafePath(InvalidArchive):
    """An archive entry or a name would land outside its directory."""


class DigestMismatch(IntermodalError):
    """Content does not hash to the digest it was announced with."""

    def __init__(self, what: str, expected: str, actual: str) -> None:
        super().__init__(
            f"{what}: content has digest {actual} but {expected} was expected; "
            "the data is corrupted or was tampered with, nothing was stored; "
            "retry, and check the source if it happens again"
        )
        self.expected = expected
        self.actual = actual


class IncorrectState(IntermodalError):
    """The object is not in a state that allows the operation."""

    def __init__(self, what: str, status: str, wanted: str) -> None:
        super().__init__(f"{what} is {status}; this needs it to be {wanted}")
        self.status = status
        self.wanted = wanted


class RegistryError(IntermodalError):
    """A registry answered with an error or could not be reached."""

    def __init__(self, message: str, status: int | None = None, url: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.url = url


class AuthenticationError(RegistryError):
    """The registry refused our credentials (or wants some)."""


class RuntimeFailure(IntermodalError):
    """The OCI runtime could not create, start or manage a container."""


class KernelError(IntermodalError):
    """A system call failed; the message names the operation and the path."""

    def __init__(self, op: str, path: str | os.PathLike | None, err: int, hint: str = "") -> None:
        where = f" {os.fspath(path)}" if path is not None else ""
        text = f"{op}{where}: {os.strerror(err)}"
        if hint:
            text += f"; {hint}"
        super().__init__(text)
        self.op = op
        self.path = path
        self.errno = err

    @classmethod
    def from_oserror(cls, op: str, exc: OSError, hint: str = "") -> KernelError:
        return cls(op, exc.filename, exc.errno or _errno.EIO, hint)


class StoreCorrupted(IntermodalError):
    """On-disk state is damaged beyond what the engine repairs by itself."""


class NetworkError(IntermodalError):
    """A netlink or nftables operation failed; the message names the device and namespace."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class DockerfileError(InvalidArgument):
    """A Dockerfile cannot be parsed or names something the build cannot use; the message gives the line."""


class BuildFailed(IntermodalError):
    """A build step failed (a RUN exited non-zero); nothing was tagged."""

    exit_code = 1  # as `docker build` and `podman build` exit

    def __init__(self, message: str, step: str = "", code: int | None = None) -> None:
        super().__init__(message)
        self.step = step
        self.code = code
