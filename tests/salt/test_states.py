"""The states through `salt-call --local state.apply`: predict (test=True), apply, apply again, change.

Each test has its own engine root (the minion option `intermodal.root`) and
Salt config in a temp dir; containers and networks are removed and checked
for leaks afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox"), pytest.mark.usefixtures("clean_containers")]


def _predicted(ret: dict) -> tuple:
    return ret["result"], ret["changes"], ret["plan"]["actions"]


def test_images_and_containers_converge(salt, busybox_archive: Path):
    salt.sls("site", f"""
        busybox:
          intermodal_image.present:
            - load: {busybox_archive}
        web:
          intermodal_container.running:
            - image: busybox
            - command: sleep 1000
            - stop_timeout: 1
            - environment:
              - MODE: prod
              - LEVEL: "3"
            - labels: [app=web]
            - log_opt: {{max-size: 1m}}
            - require:
              - intermodal_image: busybox
        """)
    check = salt.apply("site", "test=True")
    assert check["busybox"]["result"] is None and check["busybox"]["plan"]["actions"] == ["load"]
    assert check["busybox"]["comment"] == "Image 'busybox' would be loaded."
    # The container's image comes with the required state; alone it would be pulled.
    assert check["web"]["result"] is None and check["web"]["changes"] == {"state": {"old": "absent",
                                                                                  "new": "running"}}
    first = salt.apply("site")
    assert first["busybox"]["changes"] == check["busybox"]["changes"]  # the id the archive's manifest named
    assert first["web"]["result"] is True and first["web"]["changes"] == check["web"]["changes"]
    assert first["web"]["plan"]["actions"] == ["create", "start"]
    again = salt.apply("site")
    assert all(r["result"] is True and r["changes"] == {} for r in again.values()), again
    predicted = salt.apply("site", "test=True")
    assert all(r["result"] is True and r["changes"] == {} for r in predicted.values()), predicted

    # A changed environment: predicted exactly, applied, then nothing.
    salt.sls("site", f"""
        busybox:
          intermodal_image.present:
            - load: {busybox_archive}
        web:
          intermodal_container.running:
            - image: busybox
            - command: [sleep, "1000"]
            - stop_timeout: 1
            - environment: {{MODE: test, LEVEL: "3"}}
            - labels: {{app: web}}
            - log_opt: {{max-size: 1048576}}
        """)
    check = salt.apply("site", "test=True")
    web = check["web"]
    assert web["result"] is None and web["plan"]["actions"] == ["recreate", "start"]
    assert list(web["changes"]) == ["env"]  # the environment in force: the image's PATH too
    assert (web["changes"]["env"]["old"]["MODE"], web["changes"]["env"]["new"]["MODE"]) == ("prod", "test")
    changed = salt.apply("site")
    assert changed["web"]["result"] is True
    assert changed["web"]["changes"] == check["web"]["changes"]
    assert changed["web"]["comment"] == "Container 'web' was replaced, started."
    assert all(r["changes"] == {} for r in salt.apply("site").values())
    _, inspect = salt.call("intermodal.inspect_container", "web")
    assert "MODE=test" in inspect["Config"]["Env"] and inspect["State"]["Status"] == "running"


def test_forced_load_of_the_same_image_is_no_change(salt, busybox_archive: Path):
    salt.sls("img", f"""
        busybox:
          intermodal_image.present:
            - load: {busybox_archive}
            - force: True
        """)
    first = salt.apply("img")
    assert first["busybox"]["changes"]["id"]["old"] is None
    check = salt.apply("img", "test=True")
    assert check["busybox"]["result"] is True and check["busybox"]["changes"] == {}
    again = salt.apply("img")
    assert again["busybox"]["result"] is True and again["busybox"]["changes"] == {}
    salt.sls("gone", """
        busybox:
          intermodal_image.absent: []
        """)
    assert salt.apply("gone", "test=True")["busybox"]["result"] is None
    gone = salt.apply("gone")
    assert gone["busybox"]["changes"] == {"state": {"old": "present", "new": "absent"}}
    assert salt.apply("gone")["busybox"]["changes"] == {}
    _, images = salt.call("intermodal.images")
    assert images == []


def test_watch_replaces_and_restarts(salt, busybox_archive: Path, tmp_path: Path):
    config = tmp_path / "app.conf"
    sls = """
        busybox:
          intermodal_image.present:
            - load: {archive}
        {config}:
          file.managed:
            - contents: "{contents}"
        app:
          intermodal_container.running:
            - image: busybox
            - command: sleep 1000
            - stop_timeout: 1
            - binds: ["{config}:/etc/app.conf:ro"]
            - require:
              - intermodal_image: busybox
            - watch:
              - file: {config}
        side:
          intermodal_container.running:
            - image: busybox
            - command: sleep 1000
            - stop_timeout: 1
            - watch_action: restart
            - watch:
              - file: {config}
        """
    salt.sls("watch", sls.format(archive=busybox_archive, config=config, contents="v1"))
    first = salt.apply("watch")
    assert first["app"]["changes"]["state"] == {"old": "absent", "new": "running"}
    before = {n: salt.call("intermodal.inspect_container", n)[1] for n in ("app", "side")}
    assert all(r["changes"] == {} for r in salt.apply("watch").values())

    salt.sls("watch", sls.format(archive=busybox_archive, config=config, contents="v2"))
    check = salt.apply("watch", "test=True")
    assert check[str(config)]["result"] is None
    changed = salt.apply("watch")
    assert changed[str(config)]["changes"]
    assert changed["app"]["result"] is True and changed["app"]["plan"]["actions"] == ["recreate", "start"]
    assert changed["side"]["result"] is True and changed["side"]["plan"]["actions"] == ["restart"]
    app = salt.call("intermodal.inspect_container", "app")[1]
    side = salt.call("intermodal.inspect_container", "side")[1]
    assert app["Id"] != before["app"]["Id"] and app["State"]["Status"] == "running"
    # watch_action restart: the same container, really restarted (a new start time).
    assert side["Id"] == before["side"]["Id"] and side["State"]["Status"] == "running"
    assert side["State"]["StartedAt"] != before["side"]["State"]["StartedAt"]
    out = salt.call("intermodal.exec", "app", "cat /etc/app.conf")[1]
    assert out["stdout"] == "v2", out
    assert all(r["changes"] == {} for r in salt.apply("watch").values())


def test_stopped_absent_and_one_shot_run(salt, busybox_archive: Path, tmp_path: Path):
    marker = tmp_path / "ran"
    salt.sls("life", f"""
        busybox:
          intermodal_image.present:
            - load: {busybox_archive}
        svc:
          intermodal_container.running:
            - image: busybox
            - command: sleep 1000
            - stop_timeout: 1
        """)
    salt.apply("life")
    salt.sls("stop", """
        svc:
          intermodal_container.stopped: []
        ghost:
          intermodal_container.stopped:
            - error_on_absent: False
        """)
    check = salt.apply("stop", "test=True")
    assert _predicted(check["svc"]) == (None, {"state": {"old": "running", "new": "exited"}}, ["stop"])
    stopped = salt.apply("stop")
    assert stopped["svc"]["changes"] == check["svc"]["changes"] and stopped["ghost"]["result"] is True
    assert salt.apply("stop")["svc"]["changes"] == {}

    salt.sls("once", f"""
        migrate:
          intermodal_container.run:
            - image: busybox
            - command: sh -c 'echo migrated; exit 0'
            - replace: True
            - creates: {marker}
        failing:
          intermodal_container.run:
            - image: busybox
            - command: sh -c 'exit 3'
            - unless: test -e {marker}
        """)
    assert salt.apply("once", "test=True")["migrate"]["comment"] == "Container would be run."
    ran = salt.apply("once", check=False)
    assert ran["migrate"]["result"] is True
    assert ran["migrate"]["changes"]["ExitCode"] == 0 and ran["migrate"]["changes"]["Logs"] == "migrated\n"
    assert ran["failing"]["result"] is False and ran["failing"]["changes"]["ExitCode"] == 3
    marker.write_text("done")
    skipped = salt.apply("once")
    assert all(r["result"] is True and r["changes"] == {} for r in skipped.values()), skipped

    salt.sls("rm", """
        svc:
          intermodal_container.absent: []
        migrate:
          intermodal_container.absent: []
        failing:
          intermodal_container.absent: []
        """)
    removed = salt.apply("rm")
    assert all(r["changes"] == {"state": {"old": "exited", "new": "absent"}} for r in removed.values()), removed
    assert salt.call("intermodal.ps", "all=True")[1] == []


def test_absent_refuses_a_running_container_without_force(salt, busybox_archive: Path):
    salt.call("intermodal.load", str(busybox_archive))
    salt.call("intermodal.run", "busybox", "name=live", "cmd=sleep 1000", "bg=True")
    salt.sls("rm", """
        live:
          intermodal_container.absent: []
        """)
    refused = salt.apply("rm", check=False)["live"]
    assert refused["result"] is False and "set force to True" in refused["comment"]
    salt.sls("rm", """
        live:
          intermodal_container.absent:
            - force: True
        """)
    assert salt.apply("rm")["live"]["changes"] == {"state": {"old": "running", "new": "absent"}}


@pytest.mark.requires("nft")
@pytest.mark.usefixtures("clean_networks")
def test_networks_and_volumes(salt, busybox_archive: Path):
    import os

    subnet = f"10.{150 + os.getpid() % 50}.{(os.getpid() + 7) % 250}"
    salt.sls("net", f"""
        busybox:
          intermodal_image.present:
            - load: {busybox_archive}
        web:
          intermodal_container.running:
            - image: busybox
            - command: sleep 1000
            - stop_timeout: 1
            - network_mode: bridge
        backend:
          intermodal_network.present:
            - subnet: {subnet}.0/24
            - gateway: {subnet}.1
            - labels: {{tier: backend}}
            - containers: [web]
            - require:
              - intermodal_container: web
        data:
          intermodal_volume.present:
            - labels: {{app: web}}
        """)
    check = salt.apply("net", "test=True")
    assert check["backend"]["result"] is None
    first = salt.apply("net")
    assert first["backend"]["plan"]["actions"] == ["create", "connect:web"]
    assert first["data"]["changes"] == {"state": {"old": "absent", "new": "present"}}
    again = salt.apply("net")
    assert all(r["changes"] == {} for r in again.values()), again
    _, networks = salt.call("intermodal.networks")
    backend = next(n for n in networks if n["Name"] == "backend")
    assert backend["IPAM"]["Config"][0]["Subnet"] == f"{subnet}.0/24"
    assert [c["Name"] for c in backend["Containers"].values()] == ["web"]

    # A differing label on a volume would destroy its content: refused without force, recreated with it.
    salt.sls("vol", """
        data:
          intermodal_volume.present:
            - labels: {app: db}
        """)
    refused = salt.apply("vol", check=False)["data"]
    assert refused["result"] is False and "force" in refused["comment"]
    salt.sls("vol", """
        data:
          intermodal_volume.present:
            - labels: {app: db}
            - force: True
        """)
    assert salt.apply("vol", "test=True")["data"]["plan"]["actions"] == ["recreate"]
    recreated = salt.apply("vol")["data"]
    assert recreated["changes"] == {"labels": {"old": {"app": "web"}, "new": {"app": "db"}}}

    salt.sls("gone", """
        web:
          intermodal_container.absent:
            - force: True
        backend:
          intermodal_network.absent:
            - require:
              - intermodal_container: web
        data:
          intermodal_volume.absent: []
        """)
    gone = salt.apply("gone")
    assert gone["backend"]["changes"] == {"state": {"old": "present", "new": "absent"}}
    assert gone["data"]["changes"] == {"state": {"old": "present", "new": "absent"}}
    assert all(r["changes"] == {} for r in salt.apply("gone").values())


def test_execution_module(salt, busybox_archive: Path, tmp_path: Path):
    _, loaded = salt.call("intermodal.load", str(busybox_archive))
    assert loaded[0]["RepoTags"] == ["docker.io/library/busybox:latest"]
    salt.call("intermodal.tag", "busybox", "example.test/bb:1")
    _, images = salt.call("intermodal.images")
    assert sorted(images[0]["RepoTags"]) == ["docker.io/library/busybox:latest", "example.test/bb:1"]
    _, ran = salt.call("intermodal.run", "busybox", "name=once", "cmd=echo hello")
    assert ran["ExitCode"] == 0 and ran["Logs"] == "hello\n"
    assert salt.call("intermodal.logs", "once")[1] == "hello\n"
    svc = salt.call("intermodal.create", "busybox", "name=svc", "cmd=sleep 1000", "stop_timeout=1",
                    "environment={A: b}")[1]
    assert salt.call("intermodal.start", "svc")[1]["Status"] == "running"
    assert salt.call("intermodal.exec", "svc", "sh -c 'echo $A'")[1] == {"retcode": 0, "stdout": "b", "stderr": ""}
    assert [c["Name"] for c in salt.call("intermodal.ps")[1]] == ["svc"]
    assert salt.call("intermodal.restart", "svc", "timeout=1")[1]["Status"] == "running"
    assert salt.call("intermodal.kill", "svc")[1]["Status"] == "exited"
    salt.call("intermodal.save", "busybox", str(tmp_path / "out.tar"))
    assert (tmp_path / "out.tar").stat().st_size > 0
    pruned = salt.call("intermodal.prune", "containers=True")[1]
    assert sorted(pruned["Containers"]) == sorted([ran["Id"], svc["Id"]])

    # Engine errors: the engine's message, a non-zero exit.
    code, message = salt.call("intermodal.inspect_container", "nothere", check=False)
    assert code != 0 and "no such container: nothere; see `imod ps -a`" in message
    code, message = salt.call("intermodal.rmi", "nothere:1", check=False)
    assert code != 0 and "nothere" in str(message)

