"""The container planner, table-driven: a declaration against what the engine stored gives the right plan.

Rows follow the pitfalls reported against community.docker, containers.podman and Salt's docker states
(shared/reference/*-pitfalls.md): each "no change" row is a declaration that means what the engine
already has, spelled another way; each "change" row is a real difference that must not be missed.
"""

from __future__ import annotations

from typing import Any

import pytest

from intermodal.containers.spec import ContainerSpec, Healthcheck, Mount
from intermodal.declare import container
from intermodal.errors import ImageNotFound, InvalidArgument

IMAGE_ID = "sha256:" + "a" * 64
OTHER_ID = "sha256:" + "b" * 64
BUSYBOX = {"config": {"Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}}
NGINX = {"config": {"Cmd": ["nginx", "-g", "daemon off;"], "Entrypoint": ["/docker-entrypoint.sh"],
                    "Env": ["PATH=/usr/bin:/bin", "NGINX_VERSION=1.25"], "Labels": {"maintainer": "x"},
                    "StopSignal": "SIGQUIT", "WorkingDir": "", "ExposedPorts": {"80/tcp": {}}}}


def stored(image_config: dict[str, Any] = BUSYBOX, status: str = "running", image_id: str = IMAGE_ID,
           **fields: Any) -> container.Current:
    """A container as the engine stored it (the CLI's normalised spec)."""
    return container.Current("c" * 64, ContainerSpec.build("busybox", name="c1", **fields), image_id,
                             image_config, status)


def planned(options: dict[str, Any], current: container.Current | None, image_config: dict[str, Any] = BUSYBOX,
            image_id: str | None = IMAGE_ID, **kw: Any):
    declared = container.declare({"name": "c1", "image": "busybox", "state": "started", **options})
    return container.plan(declared, current, image_id=image_id, image_config=image_config, **kw)


SAME = [
    # (case, declared options, stored fields, image config)
    ("1 command string vs argv", {"command": "sleep 1d"}, {"command": ["sleep", "1d"]}, BUSYBOX),
    ("2 command argv", {"command": ["sleep", "1d"]}, {"command": ["sleep", "1d"]}, BUSYBOX),
    ("3 command [] is the image's CMD", {"command": []}, {}, NGINX),
    ("3b command equal to the image's CMD", {"command": ["nginx", "-g", "daemon off;"]}, {}, NGINX),
    ("4 args that look like flags", {"command": "-p 8080"}, {"command": ["-p", "8080"]}, BUSYBOX),
    ("5 entrypoint string", {"entrypoint": "/bin/sh -c 'echo a b'"}, {"entrypoint": ["/bin/sh", "-c", "echo a b"]},
     BUSYBOX),
    ("6 env value with = and ?", {"env": {"URI": "mongodb://h:1/db?replicaset=rs01"}},
     {"env": ["URI=mongodb://h:1/db?replicaset=rs01"]}, BUSYBOX),
    ("7 env over the image's", {"env": {"A": "x"}}, {"env": {"A": "x"}}, NGINX),
    ("7b env equal to the image's", {"env": {"NGINX_VERSION": "1.25"}}, {}, NGINX),
    ("env numbers are text", {"env": {"N": 3}}, {"env": {"N": "3"}}, BUSYBOX),
    ("11 labels from the image", {"labels": {"a": "1"}}, {"labels": {"a": "1"}}, NGINX),
    ("11b label numbers", {"labels": {"a": 1}}, {"labels": ["a=1"]}, NGINX),
    ("12 log options ints", {"log_options": {"max-file": 1, "max-size": "10m"}},
     {"log_max_file": 1, "log_max_size": "10m"}, BUSYBOX),
    ("12b log max-size in bytes", {"log_options": {"max-size": 10485760}}, {"log_max_size": "10m"}, BUSYBOX),
    ("13 log driver json-file", {"log_driver": "json-file"}, {}, BUSYBOX),
    ("14 memory", {"memory": "512m"}, {"memory": 536870912}, BUSYBOX),
    ("14b memory upper case", {"memory": "512M"}, {"memory": "512m"}, BUSYBOX),
    ("17 cpus", {"cpus": 1.5}, {"cpus": "1.5"}, BUSYBOX),
    ("27 bind with an explicit rw", {"volumes": ["/srv/conf:/etc/x"]}, {"mounts": ["/srv/conf:/etc/x:rw"]}, BUSYBOX),
    ("28 double and trailing slashes", {"volumes": ["/srv//data/:/data"]}, {"mounts": ["/srv/data:/data"]}, BUSYBOX),
    ("mounts in any order", {"volumes": ["a:/a", "b:/b"]}, {"mounts": ["b:/b", "a:/a"]}, BUSYBOX),
    ("mounts dict vs -v", {"mounts": [{"type": "volume", "source": "data", "target": "/data", "read_only": True}]},
     {"mounts": ["data:/data:ro"]}, BUSYBOX),
    ("29 healthcheck string and durations", {"healthcheck": {"test": "curl -f http://x", "interval": "30s"}},
     {"healthcheck": Healthcheck(("CMD-SHELL", "curl -f http://x"), 30_000_000_000)}, BUSYBOX),
    ("29b healthcheck defaults spelled out", {"healthcheck": {"test": ["CMD", "true"], "retries": 3}},
     {"healthcheck": {"cmd": ["true"]}}, BUSYBOX),
    ("30 healthcheck NONE vs none", {"healthcheck": {"test": ["NONE"]}}, {}, BUSYBOX),
    ("31 stop signal name vs number", {"stop_signal": "SIGTERM"}, {"stop_signal": 15}, BUSYBOX),
    ("31b stop signal short name", {"stop_signal": "term"}, {}, BUSYBOX),
    ("32 stop signal from the image", {}, {}, NGINX),
    ("32b stop signal equal to the image's", {"stop_signal": 3}, {}, NGINX),
    ("34 restart policy", {"restart_policy": "always"}, {"restart": "always"}, BUSYBOX),
    ("36 retries ignored unless on-failure", {"restart_policy": "always", "restart_retries": 5},
     {"restart": "always"}, BUSYBOX),
    ("on-failure with retries", {"restart_policy": "on-failure", "restart_retries": 3},
     {"restart": "on-failure:3"}, BUSYBOX),
    ("45 capability names", {"capabilities": ["net_admin"]}, {"cap_add": ["CAP_NET_ADMIN"]}, BUSYBOX),
    ("46 tmpfs size", {"tmpfs": ["/run:size=64m"]}, {"mounts": [Mount("tmpfs", "/run", "", False,
                                                                     ("size=67108864",))]}, BUSYBOX),
    ("66 hostname unset both sides", {}, {}, BUSYBOX),
    ("workdir equal to the default", {"working_dir": "/"}, {}, BUSYBOX),
    ("stop timeout equal to the default", {"stop_timeout": 10}, {}, BUSYBOX),
    ("network bridge is the default", {"network_mode": "bridge"}, {}, BUSYBOX),
    ("env_file", {"env_file": "ENVFILE"}, {"env": {"A": "1"}}, BUSYBOX),
]


@pytest.mark.parametrize(("case", "declared", "fields", "image"), SAME, ids=[r[0] for r in SAME])
def test_same_container_spelled_otherwise_is_no_change(case, declared, fields, image, tmp_path):
    if declared.get("env_file") == "ENVFILE":
        (tmp_path / "env").write_text("# a comment\nA=1\n\n")
        declared = {"env_file": str(tmp_path / "env")}
    plan = planned(declared, stored(image, **fields), image_config=image)
    assert plan.actions == () and plan.differences == (), case


CHANGED = [
    # (case, declared, stored fields, the option reported)
    ("8 env values are case-sensitive", {"env": {"A": "Bar"}}, {"env": {"A": "bar"}}, "env"),
    ("an env entry removed", {"env": {"A": "1"}}, {"env": {"A": "1", "B": "2"}}, "env"),
    ("a label removed", {}, {"labels": {"a": "1"}}, "labels"),
    ("memory removed is back to unlimited", {}, {"memory": "64m"}, "memory"),
    ("55 read_only true to false", {"read_only": False}, {"read_only": True}, "read_only"),
    ("command differs", {"command": "sleep 2"}, {"command": ["sleep", "1"]}, "command"),
    ("command argv order", {"command": ["b", "a"]}, {"command": ["a", "b"]}, "command"),
    ("mount read-only", {"volumes": ["data:/data:ro"]}, {"mounts": ["data:/data"]}, "mounts"),
    ("hostname set", {"hostname": "web"}, {}, "hostname"),
    ("log max-file", {"log_options": {"max-file": 3}}, {}, "log"),
    ("healthcheck interval", {"healthcheck": {"test": "true", "interval": "10s"}},
     {"healthcheck": {"cmd": "true", "interval": "30s"}}, "healthcheck"),
]


@pytest.mark.parametrize(("case", "declared", "fields", "option"), CHANGED, ids=[r[0] for r in CHANGED])
def test_a_real_difference_recreates(case, declared, fields, option):
    plan = planned(declared, stored(**fields))
    assert plan.actions == ("recreate", "start"), case
    assert [d.name for d in plan.differences] == [option]


def test_differences_carry_both_normalised_values():
    plan = planned({"memory": "1g"}, stored(memory="512m"))
    (diff,) = plan.differences
    assert diff == ("memory", 1073741824, 536870912)
    assert plan.before_after() == ({"memory": 536870912}, {"memory": 1073741824})


def test_35_restart_policy_updates_in_place_where_the_engine_can():
    current = stored(restart="on-failure:3")
    assert planned({"restart_policy": "always"}, current, can_update=True).actions == ("update",)
    assert planned({"restart_policy": "always"}, current, can_update=False).actions == ("recreate", "start")
    # One option that needs a new container makes the whole change a recreate.
    both = planned({"restart_policy": "always", "read_only": True}, current, can_update=True)
    assert both.actions == ("recreate", "start")


def test_50_51_image_compared_by_id():
    assert planned({}, stored(), image_id=IMAGE_ID).actions == ()
    plan = planned({}, stored(), image_id=OTHER_ID)
    assert plan.actions == ("recreate", "start")
    assert plan.differences[0] == ("image", OTHER_ID, IMAGE_ID)


def test_54_a_missing_image_is_pulled_and_the_container_recreated():
    plan = planned({}, stored(), image_id=None, image_config=None)
    assert plan.actions == ("pull", "recreate", "start")
    assert planned({}, None, image_id=None, image_config=None).actions == ("pull", "create", "start")
    with pytest.raises(ImageNotFound, match="pull is never"):
        planned({"pull": "never"}, None, image_id=None, image_config=None)


def test_52_53_pull_always_follows_the_registry():
    assert planned({"pull": "always"}, stored(), remote_id=IMAGE_ID).actions == ()
    moved = planned({"pull": "always"}, stored(), remote_id=OTHER_ID)
    assert moved.actions == ("pull", "recreate", "start")
    unknown = planned({"pull": "always"}, stored(), remote_id="unknown")
    assert unknown.actions == ("pull",) and unknown.warnings


def test_56_restart_never_skips_a_recreate():
    assert planned({"restart": True}, stored(), image_id=OTHER_ID).actions == ("recreate", "start")
    assert planned({"restart": True}, stored()).actions == ("restart",)
    assert planned({"recreate": True}, stored()).actions == ("recreate", "start")


@pytest.mark.parametrize(("state", "status", "actions"), [
    ("started", "running", ()),
    ("started", "exited", ("start",)),
    ("started", "created", ("start",)),
    ("stopped", "running", ("stop",)),
    ("stopped", "exited", ()),
    ("present", "running", ()),
    ("present", "exited", ()),
    ("absent", "running", ("remove",)),
])
def test_states(state, status, actions):
    assert planned({"state": state}, stored(status=status)).actions == actions


@pytest.mark.parametrize(("state", "status", "actions"), [
    ("present", "running", ("recreate", "start")),  # present keeps a running container running
    ("present", "exited", ("recreate",)),
    ("stopped", "running", ("recreate",)),
])
def test_a_recreate_keeps_or_sets_the_running_state(state, status, actions):
    assert planned({"state": state, "memory": "64m"}, stored(status=status)).actions == actions


def test_absent_when_missing_is_nothing():
    assert container.plan(container.declare({"name": "c1", "state": "absent"}), None).actions == ()


@pytest.mark.parametrize(("comparisons", "changed"), [
    ({}, True),
    ({"labels": "ignore"}, False),
    ({"labels": "allow_more_present"}, False),
    ({"*": "ignore"}, False),
    ({"*": "ignore", "labels": "strict"}, True),
])
def test_comparisons_are_arguments(comparisons, changed):
    """The stored container has one more label than declared; the shared table is never edited."""
    plan = planned({"labels": {"a": "1"}, "comparisons": comparisons}, stored(labels={"a": "1", "b": "2"}))
    assert plan.changed is changed
    from intermodal.declare.options import CONTAINER

    assert CONTAINER["labels"].comparison == "strict"


@pytest.mark.parametrize(("options", "message"), [
    ({"env": {"DEBUG": True}}, "quote it"),  # 9: never a silent "True"
    ({"log_options": {"tag": "x"}}, "max-size and max-file"),
    ({"comparisons": {"nosuch": "strict"}}, "unknown option"),
    ({"comparisons": {"env": "loose"}}, "unknown mode"),
    ({"published_ports": ["80:80"], "network_mode": "none"}, "need a network"),  # 23: not without a network
    ({"log_driver": "syslog"}, "json-file"),
    ({"mounts": [{"type": "bind", "target": "/x"}]}, "no source"),
])
def test_invalid_declarations_say_what_to_do(options, message):
    with pytest.raises(InvalidArgument, match=message):
        container.declare({"name": "c1", "image": "busybox", **options})


def test_declaration_needs_an_image_unless_absent():
    with pytest.raises(InvalidArgument, match="image is required"):
        container.declare({"name": "c1", "state": "started"})
    assert container.declare({"name": "c1", "state": "absent"}).spec is None


def test_every_spec_field_is_compared():
    """A field added to ContainerSpec needs a row in declare.options.CONTAINER and a line in expected()."""
    from intermodal.records import fields

    compared = set(container.expected(ContainerSpec.build("busybox"), BUSYBOX))
    by_identity = {"image", "name"}  # the image by id, the name is the container's identity
    # compared as "log", "network" (the first network) and "networks" (the others)
    together = {"log_max_size", "log_max_file", "ip", "network_aliases", "extra_networks"}
    missing = set(fields(ContainerSpec)) - compared - by_identity - together
    assert not missing, f"ContainerSpec fields the planner does not compare yet: {sorted(missing)}"
    from intermodal.declare.options import CONTAINER

    assert compared - {"ports"} <= {row.field for row in CONTAINER.values()}


def test_differences_of_every_kind_render_as_json():
    import json

    current = stored(mounts=["data:/data"], healthcheck={"cmd": "true"}, restart="always", cap_add=["NET_ADMIN"])
    plan = planned({"volumes": ["data:/data:ro"], "healthcheck": {"test": "false"}, "restart_policy": "no",
                    "capabilities": ["SYS_TIME"]}, current)
    assert {d.name for d in plan.differences} == {"mounts", "healthcheck", "restart", "cap_add"}
    before, after = plan.before_after()
    json.dumps([before, after, plan.to_data()])
    assert after["mounts"] == [{"Type": "volume", "Source": "data", "Target": "/data", "ReadOnly": True,
                                "Options": []}]
    assert before["restart"] == {"Name": "always", "MaximumRetryCount": 0}


NETWORKING = "ports" in container.SPEC_FIELDS and "ip" in container.SPEC_FIELDS
needs_networking = pytest.mark.skipif(not NETWORKING, reason="ContainerSpec has no ports/ip yet")


@needs_networking
@pytest.mark.parametrize(("case", "declared", "fields", "changed"), [
    ("ports in another order", {"published_ports": ["80:80", "443:443"]}, {"ports": ["443:443", "80:80"]}, False),
    ("0.0.0.0 is every address", {"published_ports": ["0.0.0.0:5555:80"]}, {"ports": ["5555:80"]}, False),
    ("tcp is the default", {"published_ports": ["80:80/tcp"]}, {"ports": ["80:80"]}, False),
    ("a random host port is the same request", {"published_ports": ["80"]}, {"ports": ["80"]}, False),
    ("another host port", {"published_ports": ["8080:80"]}, {"ports": ["8081:80"]}, True),
    ("a port removed", {}, {"ports": ["80:80"]}, True),
    ("37 default is bridge", {"network_mode": "default"}, {"network": "bridge"}, False),
    ("networks by name", {"networks": [{"name": "net1"}]}, {"network": "net1"}, False),
    ("39 static ip", {"networks": [{"name": "net1", "ipv4_address": "172.16.44.11"}]},
     {"network": "net1", "ip": "172.16.44.11"}, False),
    ("40 aliases as a set", {"networks": [{"name": "net1", "aliases": ["b", "a"]}]},
     {"network": "net1", "network_aliases": ["a", "b"]}, False),
    ("another ip", {"networks": [{"name": "net1", "ipv4_address": "172.16.44.12"}]},
     {"network": "net1", "ip": "172.16.44.11"}, True),
    ("another network", {"network_mode": "net2"}, {"network": "net1"}, True),
])
def test_ports_and_networks(case, declared, fields, changed):
    base = {"network_mode": "bridge"} if "network_mode" not in declared and "networks" not in declared else {}
    stored_fields = {"network": "bridge", **fields}
    plan = planned({**base, **declared}, stored(**stored_fields))
    assert plan.changed is changed, case


@needs_networking
def test_23_ports_with_host_networking_are_refused():
    with pytest.raises(InvalidArgument):
        container.declare({"name": "c1", "image": "busybox", "network_mode": "host", "published_ports": ["80:80"]})


MULTI = "extra_networks" in container.SPEC_FIELDS


@pytest.mark.skipif(not MULTI, reason="ContainerSpec joins one network so far")
@pytest.mark.parametrize(("case", "declared", "configured", "actions"), [
    ("listed as configured", {"networks": [{"name": "net1"}, {"name": "net2", "aliases": ["x"]}]},
     [("net1", None, ()), ("net2", None, ("x",))], ()),
    ("one more is connected in place", {"networks": [{"name": "net1"}, {"name": "net2"}]},
     [("net1", None, ())], ("connect:net2",)),
    ("another address: off and on again",
     {"networks": [{"name": "net1"}, {"name": "net2", "ipv4_address": "10.0.0.3"}]},
     [("net1", None, ()), ("net2", "10.0.0.2", ())], ("disconnect:net2", "connect:net2")),
    ("one not listed is kept", {"networks": [{"name": "net1"}]}, [("net1", None, ()), ("net2", None, ())], ()),
    ("one not listed goes with purge_networks", {"networks": [{"name": "net1"}], "purge_networks": True},
     [("net1", None, ()), ("net2", None, ())], ("disconnect:net2",)),
    ("comparisons networks: strict is purge", {"networks": [{"name": "net1"}], "comparisons": {"networks": "strict"}},
     [("net1", None, ()), ("net2", None, ())], ("disconnect:net2",)),
    ("another first network recreates", {"networks": [{"name": "net2"}, {"name": "net1"}]},
     [("net1", None, ()), ("net2", None, ())], ("recreate", "start")),
    ("not cli compatible: bridge first", {"networks": [{"name": "net1"}], "networks_cli_compatible": False},
     [("bridge", None, ()), ("net1", None, ())], ()),
    ("update and connect together", {"networks": [{"name": "net1"}, {"name": "net2"}], "memory": "64m"},
     [("net1", None, ())], ("update", "connect:net2")),
])
def test_further_networks_in_place(case, declared, configured, actions):
    current = container.Current("c" * 64, ContainerSpec.build("busybox", name="c1", network=configured[0][0]),
                                IMAGE_ID, BUSYBOX, "running", tuple(configured))
    plan = planned(declared, current, can_update=True, can_connect=True)
    assert plan.actions == actions, case
    if actions and actions[0] != "recreate":
        assert {d.name for d in plan.differences} <= {"networks", "memory"}


@pytest.mark.skipif(not MULTI, reason="ContainerSpec joins one network so far")
def test_further_networks_recreate_where_the_engine_cannot_connect():
    current = container.Current("c" * 64, ContainerSpec.build("busybox", name="c1", network="net1"), IMAGE_ID,
                                BUSYBOX, "running", (("net1", None, ()),))
    plan = planned({"networks": [{"name": "net1"}, {"name": "net2"}]}, current, can_connect=False)
    assert plan.actions == ("recreate", "start")
    before, after = plan.before_after()
    assert before == {"networks": {}} and after == {"networks": {"net2": {"ip": None, "aliases": []}}}


def test_an_image_change_is_one_difference():
    """What the new image supplies (its labels, env) is the image's difference, not one per option."""
    current = stored(image_config=BUSYBOX, image_id=OTHER_ID)
    plan = planned({}, current, image_config=NGINX)
    assert [d.name for d in plan.differences] == ["image"]
    assert plan.actions == ("recreate", "start")


def test_working_dir_trailing_slash_is_no_change():
    assert not planned({"working_dir": "/tmp/"}, stored(workdir="/tmp")).changed


def test_image_name_mismatch():
    """The same image id under another name: no change unless image_name_mismatch is recreate."""
    current = container.Current("c" * 64, ContainerSpec.build("busybox", name="c1"), IMAGE_ID, BUSYBOX, "running")
    declared = {"name": "c1", "image": "other/name:1", "state": "started"}
    assert not container.plan(container.declare(declared), current, image_id=IMAGE_ID, image_config=BUSYBOX).changed
    plan = container.plan(container.declare({**declared, "image_name_mismatch": "recreate"}), current,
                          image_id=IMAGE_ID, image_config=BUSYBOX)
    assert plan.actions == ("recreate", "start")
    assert plan.differences[0] == ("image_name", "docker.io/other/name:1", "docker.io/library/busybox:latest")
    same = container.declare({**declared, "image": "docker.io/library/busybox", "image_name_mismatch": "recreate"})
    assert not container.plan(same, current, image_id=IMAGE_ID, image_config=BUSYBOX).changed
