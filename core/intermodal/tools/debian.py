"""A Debian root filesystem with Python, made by debootstrap from this machine's own apt mirror, as a tar.

The mirror and suite are read from the machine's apt sources (one-line
``sources.list`` files and deb822 ``*.sources``), never written into code, so
the image comes from wherever this host gets its packages. The tar is kept in a
cache directory, keyed by suite, mirror and packages, so only the first build
downloads anything:

    python -m intermodal.tools.debian OUT.tar [--cache DIR] [--suite SUITE] [--mirror URL]

Molecule instances that need a real Debian (apt, Python of their own) use the
image imported from it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from intermodal.errors import BuildFailed, InvalidArgument, NotFound

APT = Path("/etc/apt")
INCLUDE = ("python3", "busybox")  # busybox: httpd and wget for the example role


def apt_mirror(apt: Path = APT) -> tuple[str, str]:
    """The first plain Debian source of this machine: (mirror URI, suite), not -updates or -security."""
    for uri, suite in _sources(apt):
        if "-" not in suite and "security" not in uri:
            return uri, suite
    raise InvalidArgument(f"no Debian mirror in the apt sources under {apt}: pass --mirror URL and --suite NAME")


def _sources(apt: Path):
    files = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]
    for f in files:
        if f.is_file():
            for line in f.read_text().splitlines():
                words = _drop_options(line.split("#", 1)[0].split())
                if len(words) >= 3 and words[0] == "deb":
                    yield words[1], words[2]
    for f in sorted((apt / "sources.list.d").glob("*.sources")):
        for stanza in f.read_text().split("\n\n"):
            fields = _deb822(stanza)
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                for uri in fields.get("uris", "").split():
                    for suite in fields.get("suites", "").split():
                        yield uri, suite


def _drop_options(words: list[str]) -> list[str]:
    """`deb [arch=amd64 signed-by=...] URI suite comps` without the bracketed options."""
    out, inside = [], False
    for w in words:
        if w.startswith("["):
            inside = True
        if not inside:
            out.append(w)
        if w.endswith("]"):
            inside = False
    return out


def _deb822(stanza: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    key = None
    for line in stanza.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line[0].isspace() and key:
            fields[key] += " " + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip().lower()
            fields[key] = value.strip()
    return fields


def build_rootfs_tar(dest: Path, *, cache: Path | None = None, suite: str | None = None, mirror: str | None = None,
                     include: tuple[str, ...] = INCLUDE) -> Path:
    """Write a minbase Debian rootfs with *include* to *dest*, from the cache when it holds one."""
    if not (mirror and suite):
        found_mirror, found_suite = apt_mirror()
        mirror, suite = mirror or found_mirror, suite or found_suite
    key = hashlib.sha256(f"{suite} {mirror} {' '.join(include)}".encode()).hexdigest()[:12]
    cached = cache / f"debian-{suite}-{key}.tar" if cache else None
    if cached and cached.is_file():
        shutil.copyfile(cached, dest)
        return dest
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise NotFound("debootstrap is not installed: apt-get install debootstrap (scripts/setup does)")
    with tempfile.TemporaryDirectory(prefix="imod-debian-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        proc = subprocess.run([debootstrap, "--variant=minbase", f"--include={','.join(include)}", suite,
                               str(rootfs), mirror], capture_output=True, text=True)
        if proc.returncode != 0:
            raise BuildFailed(f"debootstrap {suite} from {mirror} failed ({proc.returncode}): "
                              f"{(proc.stderr or proc.stdout).strip()[-500:]} (check the mirror, or pass --mirror)")
        for debs in (rootfs / "var/cache/apt/archives").glob("*.deb"):
            debs.unlink()  # downloaded packages: installed already, only weight in the image
        out = cached or dest
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        # The kernel's device nodes are the runtime's business: /dev is left empty in the image.
        subprocess.run(["tar", "-C", str(rootfs), "--numeric-owner", "--exclude=./dev/*", "-cf", str(partial), "."],
                       check=True)
        partial.replace(out)
    if cached:
        shutil.copyfile(cached, dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m intermodal.tools.debian",
                                     description="A Debian rootfs tar with Python, by debootstrap.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--cache", type=Path, help="keep the tar here and reuse it")
    parser.add_argument("--suite", help="default: the machine's apt sources")
    parser.add_argument("--mirror", help="default: the machine's apt sources")
    args = parser.parse_args(argv)
    build_rootfs_tar(args.out, cache=args.cache, suite=args.suite, mirror=args.mirror)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
