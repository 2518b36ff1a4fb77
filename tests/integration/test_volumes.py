"""Named and anonymous volumes, bind mounts: seeding, persistence, in-use refusal, rm -v, prune."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.containers import clean_containers  # noqa: F401 - the fixture below

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox"), pytest.mark.usefixtures("clean_containers")]


def test_volume_create_ls_inspect_rm(imod, engine_root: Path):
    assert imod("volume", "create", "-l", "team=a", "data").stdout == b"data\n"
    assert imod("volume", "create", "data").stdout == b"data\n"  # idempotent, as Docker
    assert imod("volume", "ls", "-q").stdout == b"data\n"
    info = json.loads(imod("volume", "inspect", "data").stdout)[0]
    assert info["Name"] == "data" and info["Driver"] == "local" and info["Labels"] == {"team": "a"}
    assert Path(info["Mountpoint"]) == engine_root / "volumes" / "data" / "_data"
    assert imod("volume", "ls", "-q", "-f", "label=team=b").stdout == b""
    assert imod("volume", "rm", "data").stdout == b"data\n"
    proc = imod("volume", "inspect", "data", check=False)
    assert proc.returncode == 1 and b"no such volume" in proc.stderr


def test_named_volume_seeded_from_image_and_kept_across_containers(imod, busybox_image):
    out = imod("run", "--rm", "-v", "site:/var/www", busybox_image, "sh", "-c",
               "cat /var/www/index.html; echo more > /var/www/extra")
    assert out.stdout == b"hello from intermodal\n"  # copied from the image on first use
    out = imod("run", "--rm", "-v", "site:/var/www:ro", busybox_image, "sh", "-c",
               "cat /var/www/extra; touch /var/www/x", check=False)
    assert out.stdout == b"more\n"
    assert out.returncode == 1 and b"Read-only" in out.stderr
    assert imod("volume", "ls", "-q").stdout == b"site\n"


def test_volume_seeded_only_while_empty_as_docker(imod, busybox_image, engine_root: Path):
    """moby's copyExistingContents: an empty volume gets the image's content (and the directory's owner and
    mode) at each container's creation, whether it is new or not; a volume with content never does."""
    imod("volume", "create", "made")  # made beforehand: seeded at its first mount all the same
    data = engine_root / "volumes" / "made" / "_data"
    assert not any(data.iterdir())
    imod("run", "--rm", "-v", "made:/var/www", busybox_image, "true")
    assert (data / "index.html").read_text() == "hello from intermodal\n"
    imod("run", "--rm", "-v", "made:/var/www", busybox_image, "sh", "-c",
         "rm /var/www/index.html; echo mine > /var/www/own")
    imod("run", "--rm", "-v", "made:/var/www", busybox_image, "true")
    assert sorted(p.name for p in data.iterdir()) == ["own"]  # content of its own: nothing merged in
    imod("run", "--rm", "-v", "made:/var/www", busybox_image, "rm", "/var/www/own")
    out = imod("run", "--rm", "-v", "made:/var/www", busybox_image, "ls", "-A", "/var/www")
    assert out.stdout == b"index.html\n"  # emptied: seeded again by the next container
    out = imod("run", "--rm", "--mount", "type=volume,source=bare,target=/var/www,volume-nocopy", busybox_image,
               "ls", "-A", "/var/www")
    assert out.stdout == b""  # nocopy
    imod("run", "--name", "owner", busybox_image, "sh", "-c",
         "mkdir -p /home/owned && chown 1000:1000 /home/owned && chmod 750 /home/owned")
    imod("commit", "owner", "owned:latest")
    imod("rm", "owner")
    imod("run", "--rm", "-v", "perms:/home/owned", "owned:latest", "true")
    mode = (engine_root / "volumes" / "perms" / "_data").stat()
    assert (mode.st_uid, mode.st_gid, mode.st_mode & 0o7777) == (1000, 1000, 0o750)  # the image's, though empty


def test_volume_in_use_is_refused_then_removable(imod, busybox_image):
    imod("create", "--name", "user", "-v", "busy:/data", busybox_image, "true")
    proc = imod("volume", "rm", "busy", check=False)
    assert proc.returncode == 1 and b"in use" in proc.stderr and b"user" in proc.stderr
    imod("rm", "user")
    imod("volume", "rm", "busy")


def test_rm_v_removes_anonymous_volumes_only(imod, busybox_image):
    imod("create", "--name", "anon", "-v", "/scratch", "-v", "named:/named", busybox_image, "true")
    volumes = imod("volume", "ls", "-q").stdout.decode().split()
    assert "named" in volumes and len(volumes) == 2
    anonymous = next(v for v in volumes if v != "named")
    assert len(anonymous) == 64
    imod("rm", "-v", "anon")
    assert imod("volume", "ls", "-q").stdout == b"named\n"


def test_prune_removes_unused_anonymous_volumes(imod, busybox_image):
    imod("create", "--name", "keep", "-v", "/kept", busybox_image, "true")
    imod("create", "--name", "drop", "-v", "/dropped", busybox_image, "true")
    imod("volume", "create", "named")
    imod("rm", "drop")
    before = set(imod("volume", "ls", "-q").stdout.decode().split())
    out = imod("volume", "prune", "-f").stdout.decode()
    after = set(imod("volume", "ls", "-q").stdout.decode().split())
    assert len(before - after) == 1 and (before - after).pop() in out
    assert "named" in after and len(after) == 2


def test_bind_mount_ro_and_rw(imod, busybox_image, tmp_path: Path):
    host = tmp_path / "shared"
    host.mkdir()
    (host / "in.txt").write_text("from host\n")
    out = imod("run", "--rm", "-v", f"{host}:/mnt", busybox_image, "sh", "-c", "cat /mnt/in.txt; echo back > /mnt/out")
    assert out.stdout == b"from host\n"
    assert (host / "out").read_text() == "back\n"
    proc = imod("run", "--rm", "--mount", f"type=bind,source={host},target=/mnt,readonly", busybox_image,
                "touch", "/mnt/nope", check=False)
    assert proc.returncode == 1 and not (host / "nope").exists()


def test_bind_mount_of_missing_path_is_a_clear_error(imod, busybox_image, tmp_path: Path):
    proc = imod("run", "--rm", "-v", f"{tmp_path}/missing:/mnt", busybox_image, "true", check=False)
    assert proc.returncode == 125 and b"does not exist" in proc.stderr
    assert imod("ps", "-a", "-q").stdout == b""
