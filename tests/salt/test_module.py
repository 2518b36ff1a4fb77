"""The execution module `intermodal` through `salt-call --local`: every function the issue lists, plain
data back (JSON from salt-call), engine errors as CommandExecutionError with the engine's message."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox"), pytest.mark.usefixtures("clean_containers")]

FUNCTIONS = ("pull", "push", "images", "inspect_image", "rmi", "build", "load", "save", "tag", "run", "create",
             "start", "stop", "restart", "kill", "rm", "ps", "inspect_container", "logs", "exec", "networks",
             "volumes", "prune", "version")


def test_every_function_is_there(salt):
    _, listed = salt.call("sys.list_functions", "intermodal")
    assert {f"intermodal.{f}" for f in FUNCTIONS} <= set(listed), listed
    _, version = salt.call("intermodal.version")
    assert version["Root"] == str(salt.engine_root)


def test_registry_build_volumes_and_lifecycle(salt, busybox_archive: Path, registry, tmp_path: Path):
    salt.call("intermodal.load", str(busybox_archive))
    ref = f"{registry.host}/salt/bb:1"
    assert ref in salt.call("intermodal.tag", "busybox", ref)[1]["RepoTags"]
    assert salt.call("intermodal.push", ref, "insecure_registry=True")[1]["Digest"].startswith("sha256:")
    removed = salt.call("intermodal.rmi", ref)[1]
    assert {"Untagged": ref} in removed, removed
    pulled = salt.call("intermodal.pull", ref, "insecure_registry=True")[1]
    assert ref in pulled["RepoTags"]
    assert salt.call("intermodal.inspect_image", ref)[1]["Id"] == pulled["Id"]

    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Containerfile").write_text("FROM busybox\nLABEL salt=yes\n")
    built = salt.call("intermodal.build", str(context), "repository=app:1", "dockerfile=Containerfile")[1]
    assert built["RepoTags"] == ["localhost/app:1"] or "app:1" in built["RepoTags"][0], built
    assert salt.call("intermodal.inspect_image", "app:1")[1]["Config"]["Labels"] == {"salt": "yes"}

    salt.call("state.single", "intermodal_volume.present", "name=data")
    assert [v["Name"] for v in salt.call("intermodal.volumes")[1]] == ["data"]

    salt.call("intermodal.run", "busybox", "name=svc", "cmd=sleep 1000", "bg=True")
    code, message = salt.call("intermodal.exec", "svc", "sleep 100", "timeout=1", check=False)
    assert code != 0 and "sleep 100 in container svc did not finish within 1s" in message, message
    assert salt.call("intermodal.stop", "svc", "timeout=1")[1]["Status"] == "exited"
    assert salt.call("intermodal.rm", "svc")[1] == {"Id": "svc"}
    assert salt.call("intermodal.ps", "all=True")[1] == []


@pytest.mark.parametrize(("args", "engine_says"), [
    (("intermodal.stop", "ghost"), "no such container: ghost"),
    (("intermodal.inspect_image", "ghost:1"), "ghost:1"),
    (("intermodal.create", "busybox", "name=bad name"), "bad name"),
])
def test_engine_errors_are_command_execution_errors(salt, busybox_archive: Path, args, engine_says):
    """Salt prints a CommandExecutionError as `Error running '<function>': <message>` (no traceback)."""
    salt.call("intermodal.load", str(busybox_archive))
    code, message = salt.call(*args, check=False)
    assert code != 0
    assert f"Error running '{args[0]}': " in message and engine_says in message, message
    assert "Traceback" not in message


def test_not_loaded_says_why():
    """As a user other than root the module is not loaded, and salt-call says why (its __virtual__)."""
    import os
    import shutil
    import tempfile

    from tests.salt.saltenv import run_bounded, salt_bin

    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("needs setpriv (util-linux)")
    base = Path(tempfile.mkdtemp(prefix="imod-salt-"))  # under /tmp: pytest's tmp_path is root's only
    try:
        (base / "conf").mkdir()
        (base / "conf" / "minion").write_text(f"id: nobody\nfile_client: local\nroot_dir: {base / 'root'}\n"
                                              "user: nobody\n")
        for path in (base, base / "conf", base / "conf" / "minion"):
            os.chown(path, 65534, 65534)
        proc = run_bounded([setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups",
                            str(salt_bin("salt-call")), "--local", "--config-dir", str(base / "conf"),
                            "intermodal.version"], timeout=120)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert proc.returncode != 0
    assert ("'intermodal' __virtual__ returned False: the intermodal engine needs root to run containers; run the "
            "minion (or salt-call) as root") in proc.stdout + proc.stderr, proc
