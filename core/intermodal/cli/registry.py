"""`imod pull`, `imod push`, `imod login`, `imod logout`.

As Docker's client does, these exit 1 on any failure (after printing the
error), so scripts written for `docker pull` behave the same.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from intermodal.cli.base import Command, Context

FAILED = 1  # Docker's exit code for a failed pull, push or login


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


def _transport_options(parser: argparse.ArgumentParser, *, authfile: bool = True) -> None:
    parser.add_argument("--tls-verify", type=_bool, nargs="?", const=True, default=True, metavar="BOOL",
                        help="verify the registry's certificate (false: also allow plain http)")
    parser.add_argument("--cert-dir", metavar="DIR", help="trust the *.crt CA certificates in DIR for the registry")
    if authfile:
        parser.add_argument("--authfile", metavar="FILE", help="credentials file (auth.json)")
        parser.add_argument("--creds", metavar="USER:PASSWORD", help="credentials for this command only")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"tls_verify": args.tls_verify, "cert_dir": args.cert_dir}
    if getattr(args, "authfile", None):
        out["authfile"] = args.authfile
    if getattr(args, "creds", None):
        user, sep, password = args.creds.partition(":")
        if not sep:
            from intermodal.errors import InvalidArgument

            raise InvalidArgument("--creds wants USER:PASSWORD")
        out["credentials"] = (user, password)
    return out


def _failing_like_docker(run: Callable[[Context, argparse.Namespace], int | None]) -> Callable[..., int | None]:
    def wrapped(ctx: Context, args: argparse.Namespace) -> int | None:
        from intermodal.errors import IntermodalError

        try:
            return run(ctx, args)
        except IntermodalError as err:
            if ctx.debug:
                raise
            print(f"Error: {err}", file=sys.stderr)
            return FAILED

    return wrapped


def _progress(quiet: bool) -> Any:
    from intermodal.images.progress import Progress, TextProgress

    return Progress() if quiet else TextProgress(sys.stdout)


# -- pull -----------------------------------------------------------------------


def _configure_pull(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="NAME[:TAG|@DIGEST]")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the image reference")
    parser.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="pick this platform from a multi-arch image")
    _transport_options(parser)


@_failing_like_docker
def _run_pull(ctx: Context, args: argparse.Namespace) -> int:
    from intermodal.images import reference as refs

    ctx.engine.images.pull(args.image, platform=args.platform, progress=_progress(args.quiet), **_options(args))
    print(str(refs.parse(args.image)))
    return 0


pull = Command("pull", "Pull an image from a registry", _configure_pull, _run_pull)


# -- push -----------------------------------------------------------------------


def _configure_push(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE")
    parser.add_argument("destination", nargs="?", metavar="DESTINATION", help="name:tag to push to (default: IMAGE)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the pushed digest")
    parser.add_argument("--digestfile", metavar="FILE", help="write the pushed manifest's digest to FILE")
    _transport_options(parser)


@_failing_like_docker
def _run_push(ctx: Context, args: argparse.Namespace) -> int:
    digest = ctx.engine.images.push(args.image, args.destination, progress=_progress(args.quiet), **_options(args))
    if args.digestfile:
        with open(args.digestfile, "w") as f:
            f.write(digest)
    if args.quiet:
        print(digest)
    return 0


push = Command("push", "Push an image to a registry", _configure_push, _run_push)


# -- login / logout ---------------------------------------------------------------


def _configure_login(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("registry", metavar="REGISTRY", help="host[:port] of the registry")
    parser.add_argument("-u", "--username")
    parser.add_argument("-p", "--password")
    parser.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    parser.add_argument("--authfile", metavar="FILE", help="credentials file to write (auth.json)")
    _transport_options(parser, authfile=False)


@_failing_like_docker
def _run_login(ctx: Context, args: argparse.Namespace) -> int:
    from intermodal.errors import InvalidArgument
    from intermodal.images.auth import login

    user, password = args.username, args.password
    if args.password_stdin:
        if password:
            raise InvalidArgument("--password and --password-stdin cannot be used together")
        password = sys.stdin.readline().rstrip("\r\n")
    if not user and sys.stdin.isatty():
        user = input("Username: ")
    if password is None:
        if not sys.stdin.isatty():
            raise InvalidArgument("no password given: pass --password-stdin and pipe it in, or -p PASSWORD")
        import getpass

        password = getpass.getpass("Password: ")
    login(_domain(args.registry), user or "", password, authfile=args.authfile, tls_verify=args.tls_verify,
          cert_dir=args.cert_dir)
    print("Login Succeeded!")
    return 0


def _domain(text: str) -> str:
    """`https://host:5000/v2/` or `host:5000` -> `host:5000`."""
    from intermodal.images.auth import normalize_key

    return normalize_key(text if "://" in text else text.split("/", 1)[0])


login = Command("login", "Log in to a registry", _configure_login, _run_login)


def _configure_logout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("registry", nargs="?", metavar="REGISTRY")
    parser.add_argument("-a", "--all", action="store_true", help="forget the credentials of every registry")
    parser.add_argument("--authfile", metavar="FILE", help="credentials file (auth.json)")


@_failing_like_docker
def _run_logout(ctx: Context, args: argparse.Namespace) -> int:
    from intermodal.errors import InvalidArgument
    from intermodal.images.auth import remove_credentials

    if args.all:
        remove_credentials(None, args.authfile)
        print("Removed login credentials for all registries")
        return 0
    if not args.registry:
        raise InvalidArgument("name the registry to log out from, or pass --all")
    domain = _domain(args.registry)
    remove_credentials(domain, args.authfile)
    print(f"Removed login credentials for {domain}")
    return 0


logout = Command("logout", "Log out from a registry", _configure_logout, _run_logout)
