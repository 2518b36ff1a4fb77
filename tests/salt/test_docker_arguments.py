"""docker_container / docker_network arguments through `salt-call --local state.apply`, as an SLS written for
Salt's docker states spells them: each one predicted (test=True gives the changes the run gives), applied,
then no change on the next run.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox"), pytest.mark.usefixtures("clean_containers")]

WAIT = 10  # seconds a test waits for a container's shell to react to a signal (it sleeps 0.2 s at a time)


def converge(salt, name: str, sls: str, *, recheck: bool = False) -> dict:
    """Predict, apply, apply again: the prediction is the run's changes; the next run changes nothing
    (and, with *recheck*, test=True then predicts nothing)."""
    salt.sls(name, sls)
    predicted = salt.apply(name, "test=True")
    applied = salt.apply(name)
    for sid, ret in applied.items():
        assert ret["result"] is True, ret
        assert ret["changes"] == predicted[sid]["changes"], (sid, predicted[sid], ret)
        assert predicted[sid]["result"] is (None if ret["changes"] else True), predicted[sid]
    again = salt.apply(name)
    assert all(r["result"] is True and r["changes"] == {} for r in again.values()), again
    if recheck:
        check = salt.apply(name, "test=True")
        assert all(r["result"] is True and r["changes"] == {} for r in check.values()), check
    return applied


def engine(salt):
    """The test's engine, in-process: what the states did is checked without a salt-call (seconds under load)."""
    from intermodal.engine import Engine

    return Engine(root=salt.engine_root)


def inspect(salt, name: str) -> dict:
    return engine(salt).containers.inspect(name)


def load(salt, archive: Path) -> None:
    engine(salt).images.load(str(archive))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, what: str):
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {WAIT}s")
        time.sleep(0.1)


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return s.recv(12).startswith(b"HTTP/1.")
    except OSError:
        return False


# A shell that reacts to signals between short sleeps (pid 1 ignores signals it has no trap for).
TRAP = "trap 'echo {word} >> /data/log; {then}' {signal}; while true; do sleep 0.2; done"


@pytest.mark.requires("nft")
@pytest.mark.usefixtures("clean_networks")
def test_docker_container_arguments(salt, busybox_archive: Path, tmp_path: Path):
    first_port, second_port = free_port(), free_port()
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("hello\n")
    sls = """
        busybox:
          intermodal_image.present:
            - load: {archive}
        web:
          intermodal_container.running:
            - image: busybox
            - cmd: httpd -f -p 80 -h /www
            - stop_timeout: 1
            - port_bindings: {ports}
            - ports: 80
            - environment: {env}
            - labels: {labels}
            - restart: {restart}
            - binds: {www}:/www:ro
            - skip_translate: binds
            - log_opt: max-size=1m
            - require:
              - intermodal_image: busybox
        """
    values = {"archive": busybox_archive, "www": tmp_path / "www"}
    first = converge(salt, "web", sls.format(**values, ports=f"127.0.0.1:{first_port}:80", env="MODE=prod,LEVEL=3",
                                              labels="[bare, tier=front, {app: web}]", restart="on-failure:3"),
                     recheck=True)
    assert first["web"]["changes"] == {"state": {"old": "absent", "new": "running"}}
    web = inspect(salt, "web")
    assert web["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert {"MODE=prod", "LEVEL=3"} <= set(web["Config"]["Env"])
    assert web["Config"]["Labels"] == {"bare": "", "tier": "front", "app": "web"}
    wait_for(lambda: answers(first_port), f"httpd answering on 127.0.0.1:{first_port}")

    # docker-py's port_bindings dict, another port; the environment as a list of {K: V}; a label gone.
    changed = converge(salt, "web", sls.format(**values, ports=f"{{80: [['127.0.0.1', {second_port}]]}}",
                                                env="[{MODE: test}, {LEVEL: '3'}]", labels="[tier=front, app=web]",
                                                restart="on-failure:3"))
    assert {"ports", "env", "labels"} <= set(changed["web"]["changes"]), changed["web"]
    assert changed["web"]["comment"] == "Container 'web' was replaced, started."
    assert changed["web"]["changes"]["labels"]["old"]["bare"] == ""
    assert "bare" not in changed["web"]["changes"]["labels"]["new"]
    wait_for(lambda: answers(second_port), f"httpd answering on 127.0.0.1:{second_port}")
    assert not answers(first_port)

    # The restart policy alone: updated in place or replaced, as the planner decides; predicted either way.
    restarted = converge(salt, "web", sls.format(**values, ports=f"127.0.0.1:{second_port}:80",
                                                  env="[MODE=test, LEVEL=3]", labels="{tier: front, app: web}",
                                                  restart="always"))
    assert list(restarted["web"]["changes"]) == ["restart"], restarted["web"]
    assert inspect(salt, "web")["HostConfig"]["RestartPolicy"]["Name"] == "always"


def test_force_replaces_after_a_graceful_stop(salt, busybox_archive: Path, tmp_path: Path):
    """force: a replacement every run (changes: forced_update, predicted); the old container gets its stop
    signal first (docker_container stops before it removes), within shutdown_timeout."""
    log = tmp_path / "log"
    load(salt, busybox_archive)
    salt.sls("forced", f"""
        svc:
          intermodal_container.running:
            - image: busybox
            - command: ["sh", "-c", "{TRAP.format(word='stopped', then='exit 0', signal='TERM')}"]
            - binds: ["{tmp_path}:/data"]
            - force: True
            - shutdown_timeout: 5
        """)
    created = salt.apply("forced")["svc"]
    assert created["changes"] == {"state": {"old": "absent", "new": "running"}}
    old = inspect(salt, "svc")["Id"]
    predicted = salt.apply("forced", "test=True")["svc"]
    assert predicted["result"] is None and predicted["changes"] == {"forced_update": True}
    assert not log.exists()
    replaced = salt.apply("forced")["svc"]
    assert replaced["result"] is True and replaced["changes"] == predicted["changes"]
    assert replaced["comment"] == "Container 'svc' was replaced, started."
    assert inspect(salt, "svc")["Id"] != old
    assert log.read_text() == "stopped\n"  # the TERM trap ran: a stop, not a kill


def test_watch_action_signal(salt, busybox_archive: Path, tmp_path: Path):
    """watch_action: SIGHUP sends the signal to a container that runs as declared (no replacement)."""
    config = tmp_path / "app.conf"
    sls = """
        {config}:
          file.managed:
            - contents: "{contents}"
        svc:
          intermodal_container.running:
            - image: busybox
            - command: ["sh", "-c", "{trap}"]
            - binds: ["{data}:/data"]
            - stop_timeout: 1
            - watch_action: SIGHUP
            - watch:
              - file: {config}
        """
    values = {"config": config, "data": tmp_path, "trap": TRAP.format(word="hup", then=":", signal="HUP")}
    load(salt, busybox_archive)
    salt.sls("hup", sls.format(**values, contents="v1"))
    salt.apply("hup")
    before = inspect(salt, "svc")
    assert all(r["changes"] == {} for r in salt.apply("hup").values())
    salt.sls("hup", sls.format(**values, contents="v2"))
    fired = salt.apply("hup")["svc"]
    assert fired["result"] is True and fired["changes"] == {"signal": "SIGHUP"}, fired
    assert fired["comment"] == "Sent signal SIGHUP to container 'svc'."
    wait_for(lambda: (tmp_path / "log").exists(), "the HUP trap writing /data/log")
    after = inspect(salt, "svc")
    assert (after["Id"], after["State"]["StartedAt"]) == (before["Id"], before["State"]["StartedAt"])
    assert (tmp_path / "log").read_text() == "hup\n"


def test_stopped_containers_and_one_shot_replace(salt, busybox_archive: Path):
    load(salt, busybox_archive)
    for name in ("a", "b"):
        salt.call("intermodal.run", "busybox", f"name={name}", "cmd=sleep 1000", "bg=True")
    salt.sls("stop", """
        both:
          intermodal_container.stopped:
            - containers: [a, b]
            - shutdown_timeout: 1
        """)
    predicted = salt.apply("stop", "test=True")["both"]
    stopped = salt.apply("stop")["both"]
    assert stopped["result"] is True and predicted["result"] is None
    assert stopped["changes"] == predicted["changes"] == {n: {"state": {"old": "running", "new": "exited"}}
                                                          for n in ("a", "b")}
    assert salt.apply("stop")["both"]["changes"] == {}

    salt.sls("once", """
        job:
          intermodal_container.run:
            - image: busybox
            - command: echo done
            - rm: True
        """)
    ran = salt.apply("once")["job"]
    assert ran["changes"]["ExitCode"] == 0 and ran["changes"]["Logs"] == "done\n"
    assert not engine(salt).containers.exists("job")  # rm: removed once its exit code and logs were read
    salt.sls("keep", """
        job:
          intermodal_container.run:
            - image: busybox
            - command: echo again
        """)
    salt.apply("keep")
    refused = salt.apply("keep", check=False)["job"]
    assert refused["result"] is False and "set replace to True" in refused["comment"]
    salt.sls("keep", """
        job:
          intermodal_container.run:
            - image: busybox
            - command: echo again
            - replace: True
        """)
    again = salt.apply("keep")["job"]
    assert again["result"] is True and again["changes"]["Logs"] == "again\n"
    assert again["comment"] == "Container ran and exited with a return code of 0."

    salt.sls("slow", """
        slow:
          intermodal_container.run:
            - image: busybox
            - command: sleep 1000
            - timeout: 1
        """)
    waited = salt.apply("slow", check=False)["slow"]
    assert waited["result"] is False and "still runs after 1" in waited["comment"], waited


@pytest.mark.requires("nft")
@pytest.mark.usefixtures("clean_networks")
def test_docker_network_containers_and_reconnect(salt, busybox_archive: Path):
    """containers: the listed ones that run are connected (others are warnings), none is disconnected;
    a recreate takes the containers off and, with reconnect (the default), puts them back at their address;
    absent disconnects them first."""
    subnet = f"10.{200 + os.getpid() % 50}.{(os.getpid() + 11) % 250}"
    salt.sls("apps", f"""
        busybox:
          intermodal_image.present:
            - load: {busybox_archive}
        web:
          intermodal_container.running:
            - image: busybox
            - command: sleep 1000
            - stop_timeout: 1
        idle:
          intermodal_container.running:
            - image: busybox
            - command: sleep 1000
            - start: False
        """)
    salt.apply("apps")
    net = """
        backend:
          intermodal_network.present:
            - subnet: {subnet}.0/24
            - labels: {{v: "{v}"}}
            {extra}
        """
    first = converge(salt, "net", net.format(subnet=subnet, v=1, extra="- containers: web,idle,ghost"), recheck=True)
    assert first["backend"]["changes"]["state"] == {"old": "absent", "new": "present"}
    assert first["backend"]["comment"] == "Network 'backend' was created, connected web."
    assert first["backend"]["warnings"] == ["The following containers do not exist: ghost.",
                                            "The following containers are not running: idle."]
    address = _addresses(salt)["web"]

    recreated = converge(salt, "net", net.format(subnet=subnet, v=2, extra=""))
    assert recreated["backend"]["changes"] == {"labels": {"old": {"v": "1"}, "new": {"v": "2"}},
                                               "reconnected": ["web"]}
    assert _addresses(salt) == {"web": address}

    alone = converge(salt, "net", net.format(subnet=subnet, v=3, extra="- reconnect: False"))
    assert alone["backend"]["changes"]["disconnected"] == ["web"]
    assert _addresses(salt) == {}

    converge(salt, "net", net.format(subnet=subnet, v=3, extra="- containers: [web]"))
    gone = converge(salt, "gone", """
        backend:
          intermodal_network.absent: []
        """)
    assert gone["backend"]["changes"] == {"state": {"old": "present", "new": "absent"}, "disconnected": ["web"]}
    assert inspect(salt, "web")["State"]["Status"] == "running"


def _addresses(salt) -> dict[str, str]:
    backend = engine(salt).networks.inspect("backend")
    return {c["Name"]: c["IPv4Address"] for c in backend["Containers"].values()}


@pytest.mark.requires("nft")
@pytest.mark.usefixtures("clean_networks")
def test_exposed_ports_publish_all_and_several_networks(salt, busybox_archive: Path):
    """ports (exposed) with publish_all_ports, and docker_container's networks: the listed networks, the first
    the container's own; a network dropped from the list is left (as docker_container does since 2019.2)."""
    from intermodal.declare.options import table

    if "exposed_ports" not in table("container"):
        pytest.skip("the planner has no exposed_ports yet")
    subnet = f"10.{200 + os.getpid() % 50}.{(os.getpid() + 23) % 250}"
    sls = """
        busybox:
          intermodal_image.present:
            - load: {archive}
        front:
          intermodal_network.present:
            - subnet: {subnet}.0/25
        back:
          intermodal_network.present:
            - subnet: {subnet}.128/25
        web:
          intermodal_container.running:
            - image: busybox
            - command: httpd -f -p 80
            - stop_timeout: 1
            - ports: 80,53/udp
            - publish_all_ports: True
            - networks: {networks}
            - require:
              - intermodal_network: front
              - intermodal_network: back
        """
    both = "[front, {back: [{aliases: [db]}]}]"
    first = converge(salt, "nets", sls.format(archive=busybox_archive, subnet=subnet, networks=both))
    assert first["web"]["changes"] == {"state": {"old": "absent", "new": "running"}}
    web = inspect(salt, "web")
    assert sorted(web["NetworkSettings"]["Networks"]) == ["back", "front"]
    ports = web["NetworkSettings"]["Ports"]
    assert ports["80/tcp"][0]["HostPort"] and ports["53/udp"][0]["HostPort"], ports  # each on an ephemeral port
    assert "db" in web["NetworkSettings"]["Networks"]["back"]["Aliases"]

    dropped = converge(salt, "nets", sls.format(archive=busybox_archive, subnet=subnet, networks="[front]"))
    assert dropped["web"]["changes"], dropped["web"]
    assert sorted(inspect(salt, "web")["NetworkSettings"]["Networks"]) == ["front"]


def test_dns_and_extra_hosts(salt, busybox_archive: Path):
    """dns, dns_search, dns_opt and extra_hosts in Salt's forms (comma-separated strings, a dict): the
    container's resolv.conf and hosts hold them; another spelling is no change; another resolver order is."""
    sls = """
        busybox:
          intermodal_image.present:
            - load: {archive}
        resolver:
          intermodal_container.running:
            - image: busybox
            - cmd: sleep 1000
            - stop_timeout: 1
            - network_mode: none
            - dns: {dns}
            - dns_search: corp.example
            - dns_opt: ndots:2
            - extra_hosts: {hosts}
            - require:
              - intermodal_image: busybox
        """
    first = converge(salt, "dns", sls.format(archive=busybox_archive, dns="192.0.2.53,192.0.2.54",
                                             hosts="db:192.0.2.10,cache:192.0.2.11"), recheck=True)
    assert first["resolver"]["changes"] == {"state": {"old": "absent", "new": "running"}}
    info = inspect(salt, "resolver")
    assert info["HostConfig"]["Dns"] == ["192.0.2.53", "192.0.2.54"]
    assert sorted(info["HostConfig"]["ExtraHosts"]) == ["cache:192.0.2.11", "db:192.0.2.10"]
    assert Path(info["ResolvConfPath"]).read_text() == ("nameserver 192.0.2.53\nnameserver 192.0.2.54\n"
                                                        "search corp.example\noptions ndots:2\n")
    assert "192.0.2.10\tdb\n" in Path(info["HostsPath"]).read_text()

    same = converge(salt, "dns", sls.format(archive=busybox_archive, dns="[192.0.2.53, 192.0.2.54]",
                                            hosts="{cache: 192.0.2.11, db: 192.0.2.10}"))
    assert same["resolver"]["changes"] == {}, same["resolver"]
    swapped = converge(salt, "dns", sls.format(archive=busybox_archive, dns="192.0.2.54,192.0.2.53",
                                               hosts="{cache: 192.0.2.11, db: 192.0.2.10}"))
    assert list(swapped["resolver"]["changes"]) == ["dns"], swapped["resolver"]
    assert inspect(salt, "resolver")["HostConfig"]["Dns"] == ["192.0.2.54", "192.0.2.53"]


def test_a_hex_name_is_no_id_prefix(salt, busybox_archive: Path):
    """A declared name that is also hex (c8, abc) means that name only: not the container whose id starts
    with it (the engine's lookup, as Docker's, falls back to id prefixes). Seen as the 30-container bench
    replacing c1 by c8 when c1's id started with c8."""
    from intermodal.containers.spec import ContainerSpec

    load(salt, busybox_archive)
    other = engine(salt).containers.create(ContainerSpec.build("busybox", name="other", command=["sleep", "1000"]))
    prefix = other.id[:3]
    assert engine(salt).containers.exists(prefix)  # the engine's lookup finds `other` by its id prefix
    salt.sls("hex", f"""
        "{prefix}":
          intermodal_container.running:
            - image: busybox
            - command: sleep 1000
            - stop_timeout: 1
        """)
    predicted = salt.apply("hex", "test=True")[prefix]
    assert predicted["changes"] == {"state": {"old": "absent", "new": "running"}}, predicted
    created = salt.apply("hex")[prefix]
    assert created["changes"] == predicted["changes"] and created["plan"]["actions"] == ["create", "start"]
    names = {c.name: c.id for c in engine(salt).containers.list()}
    assert names["other"] == other.id and prefix in names
