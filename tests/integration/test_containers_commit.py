"""`imod commit`: the container's changes, deletions included, become a layer of a new image."""

from __future__ import annotations

import json

import pytest

from tests.support.containers import clean_containers  # noqa: F401 - the fixture below

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox"), pytest.mark.usefixtures("clean_containers")]


def test_commit_adds_deletes_and_replaces(imod, busybox_image):
    imod("run", "--name", "src", "-e", "FOO=bar", busybox_image, "sh", "-c",
         "echo new > /newfile; rm /bin/vi; rm -rf /var/www; mkdir /var/www; echo fresh > /var/www/x")
    image_id = imod("commit", "-m", "my change", "-c", 'CMD ["cat", "/newfile"]', "src", "committed:1").stdout
    assert image_id.startswith(b"sha256:")
    assert imod("run", "--rm", "committed:1").stdout == b"new\n"  # the CMD from --change
    out = imod("run", "--rm", "committed:1", "sh", "-c", "ls /var/www; test -e /bin/vi || echo vi-gone; echo $FOO")
    assert out.stdout == b"x\nvi-gone\nbar\n"  # opaque dir, whiteout, the container's env
    info = json.loads(imod("image", "inspect", "committed:1").stdout)[0]
    assert len(info["RootFS"]["Layers"]) == 2
    assert info["Config"]["Cmd"] == ["cat", "/newfile"]
    history = json.loads(imod("history", "--format", "json", "committed:1").stdout.splitlines()[0])
    assert history["Comment"] == "my change"


def test_commit_a_running_container_pauses_it_and_leaves_it_running(imod, busybox_image):
    imod("run", "-d", "--name", "live", busybox_image, "sh", "-c", "echo state > /state; sleep 1000")
    imod("exec", "live", "test", "-e", "/state")
    imod("commit", "live", "snap:1")
    assert json.loads(imod("container", "inspect", "live").stdout)[0]["State"]["Status"] == "running"
    assert imod("run", "--rm", "snap:1", "cat", "/state").stdout == b"state\n"


def test_commit_leaves_runtime_mount_points_out(imod, busybox_image, engine):
    imod("run", "--name", "plain", busybox_image, "true")
    imod("commit", "plain", "plain:1")
    record = engine.images.get("plain:1")
    from intermodal.storage.layers import chain_ids

    top = engine.images.store.layers.get(chain_ids(list(record.diff_ids))[-1])
    assert top is not None and top.size == 0  # /etc/hosts, /etc/resolv.conf ... were mount points only


@pytest.fixture
def small_root(engine_root):
    """The engine root on an 8 MiB tmpfs, so that a commit runs out of space."""
    import subprocess

    from intermodal.engine import Engine
    from tests.support.containers import force_cleanup, leaks_after_removal
    from tests.support.netns import cleanup_engine

    # The tmpfs hides the root's test network settings: carry them over, so the containers here use the
    # test's own table and bridge, never the engine's defaults, and tear those down before unmounting.
    settings = (engine_root / "networks" / "config.json").read_bytes()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "imod-test-small", str(engine_root)], check=True)
    try:
        (engine_root / "networks").mkdir()
        (engine_root / "networks" / "config.json").write_bytes(settings)
        yield engine_root
    finally:
        leaks = leaks_after_removal(engine_root)
        force_cleanup(engine_root)
        cleanup_engine(Engine(root=engine_root), json.loads(settings)["table"])
        subprocess.run(["umount", "-l", str(engine_root)], check=True)
        assert not leaks, leaks


def test_commit_on_a_full_disk_fails_cleanly(small_root, imod, busybox_image):
    imod("run", "--name", "big", busybox_image, "sh", "-c", "head -c 4500000 /dev/urandom > /big")
    before = imod("images", "-q").stdout
    proc = imod("commit", "big", "big:1", check=False)
    assert proc.returncode == 125
    assert b"No space left on device" in proc.stderr and b"nothing was committed" in proc.stderr
    assert imod("images", "-q").stdout == before  # no half image
    assert not [p for p in (small_root / "tmp").iterdir() if p.name.startswith("commit-")]
    imod("rm", "big")  # the container is intact and goes as usual; space is back
    imod("run", "--rm", busybox_image, "true")
