"""A busybox root filesystem built from the host's static busybox, as a tar.

No image is ever downloaded: the binary on this machine (Debian's
busybox-static) and its applet links make a complete small rootfs. The
tests, the main job and the benchmarks use it as their base image:

    python -m intermodal.tools.busybox OUT.tar
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
DIRS = ("bin", "dev", "etc", "home", "proc", "root", "sys", "tmp", "usr", "usr/bin", "usr/sbin", "sbin", "var",
        "var/www")


def busybox_binary() -> Path:
    found = shutil.which("busybox") or str(BUSYBOX)
    return Path(found)


def applets(binary: Path) -> list[str]:
    out = subprocess.run([str(binary), "--list"], check=True, capture_output=True, text=True).stdout
    return sorted({a for a in out.split() if a and "/" not in a})


def build_rootfs_tar(dest: Path) -> Path:
    """Write a busybox rootfs tar to *dest* (deterministic content, fixed mtimes)."""
    binary = busybox_binary()
    mtime = int(time.mktime((2024, 1, 1, 0, 0, 0, 0, 1, 0)))
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in DIRS:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if d == "tmp" else 0o755
            info.mtime = mtime
            tar.addfile(info)
        info = tar.gettarinfo(str(binary), arcname="bin/busybox")
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = mtime
        with open(binary, "rb") as f:
            tar.addfile(info, f)
        for applet in applets(binary):
            if applet == "busybox":
                continue
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            link.mtime = mtime
            tar.addfile(link)
        for name, text in _ETC.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = mtime
            tar.addfile(info, io.BytesIO(data))
    return dest


_ETC = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
    "etc/group": "root:x:0:\nnogroup:x:65534:\n",
    "etc/hostname": "busybox\n",
    "var/www/index.html": "hello from intermodal\n",
}


def main(argv: list[str] | None = None) -> int:
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m intermodal.tools.busybox OUT.tar", file=sys.stderr)
        return 2
    build_rootfs_tar(Path(args[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
