"""Salt's docker argument names onto the planner's (pure logic): the same declaration, the same plan."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest

from intermodal.declare.options import table
from intermodal.errors import InvalidArgument
from intermodal.salt import common

CORPUS = Path(__file__).resolve().parents[1] / "support" / "declarations.yml"
yaml = pytest.importorskip("yaml", reason="PyYAML comes with salt and ansible-core")
# docker_container disconnects the networks its `networks` leaves out: the planner's purge_networks, if it has it.
PURGE = {"purge_networks": True} if "purge_networks" in table("container") else {}


def corpus() -> list[dict]:
    return yaml.safe_load(CORPUS.read_text())


def _planner_view(declared) -> tuple:
    """What the planner compares: every expected value, and the declaration's other settings."""
    from intermodal.declare import container

    settings = {f.name: getattr(declared, f.name) for f in dataclasses.fields(declared) if f.name != "spec"}
    return container.expected(declared.spec, {}), declared.spec.image, settings


@pytest.mark.parametrize("case", corpus(), ids=lambda c: c["id"])
def test_salt_and_ansible_spellings_declare_the_same(case):
    from intermodal.declare import container

    ansible = container.declare({"name": case["id"], "state": "started", **case["ansible"]})
    salt = container.declare(common.container_options(case["id"], case["salt"]))
    assert _planner_view(salt) == _planner_view(ansible)


@pytest.mark.parametrize(("salt", "planner"), [
    ({"image": "b", "port_bindings": "8080:80,127.0.0.1:53:53/udp"},
     {"image": "b", "published_ports": ["8080:80", "127.0.0.1:53:53/udp"]}),
    ({"image": "b", "port_bindings": {80: 8080}}, {"image": "b", "published_ports": ["8080:80"]}),
    ({"image": "b", "networks": ["front", {"back": [{"ipv4_address": "10.1.0.5"}, {"aliases": ["db"]}]}]},
     {"image": "b", "networks": [{"name": "front"},
                                 {"name": "back", "ipv4_address": "10.1.0.5", "aliases": ["db"]}], **PURGE}),
    ({"image": "b", "force": True, "insecure_registry": True}, {"image": "b", "recreate": True,
                                                                 "validate_certs": False}),
    ({"image": "b", "skip_translate": True, "__id__": "x", "require": [{"a": "b"}], "watch_action": "force",
      "shutdown_timeout": 3, "client_timeout": 5, "detach": True, "validate_ip_addrs": False},
     {"image": "b"}),
    # docker_container's value forms: comma-separated strings, K=V / {K: V} lists, docker-py dicts.
    ({"image": "b", "publish": ["4505-4506:14505-14506", 8080]},
     {"image": "b", "published_ports": ["4505-4506:14505-14506", "8080"]}),
    ({"image": "b", "port_bindings": {80: [8080, ("127.0.0.1", 8081)], "53/udp": None, 22: ("127.0.0.1",)}},
     {"image": "b", "published_ports": ["8080:80", "127.0.0.1:8081:80", "53/udp", "127.0.0.1::22"]}),
    ({"image": "b", "environment": "A=1,B=2", "labels": ["bare", "k=v", {"x": "y"}], "log_opt": "max-size=1m"},
     {"image": "b", "env": {"A": "1", "B": "2"}, "labels": {"bare": "", "k": "v", "x": "y"},
      "log_options": {"max-size": "1m"}}),
    ({"image": "b", "restart": "on-failure:5", "rm": False, "workdir": "/w", "cmd": "true", "memory": "64m"},
     {"image": "b", "restart_policy": "on-failure", "restart_retries": 5, "auto_remove": False,
      "working_dir": "/w", "command": "true", "memory": "64m"}),
    ({"image": "b", "restart_policy": {"Name": "always", "MaximumRetryCount": 0}},
     {"image": "b", "restart_policy": "always"}),
    ({"image": "b", "tmpfs": [{"/run": "size=1m"}, "/tmp"], "volume": "/a,/b", "binds": "/h:/c:ro"},
     {"image": "b", "tmpfs": ["/run:size=1m", "/tmp"], "volumes": ["/h:/c:ro", "/a", "/b"]}),
    ({"image": "b", "networks": []}, {"image": "b", "network_mode": "none"}),
    ({"image": "b", "networks": [{"back": None}]}, {"image": "b", "networks": [{"name": "back"}], **PURGE}),
    # skip_translate: the named argument's string is one item, not split at commas.
    ({"image": "b", "binds": "/h:/c:ro,Z", "skip_translate": "binds"}, {"image": "b", "volumes": ["/h:/c:ro,Z"]}),
    ({"image": "b", "cap_add": "A,B", "skip_translate": ["binds"]}, {"image": "b", "capabilities": ["A", "B"]}),
    ({"image": "b", "env": {"A": "1"}, "environment": {"A": "2"}, "ignore_collisions": True},
     {"image": "b", "env": {"A": "2"}}),
])
def test_container_names(salt, planner):
    assert common.container_options("c", salt) == {"name": "c", "state": "started", **planner}


@pytest.mark.parametrize(("salt", "message"), [
    ({"bogus": 1}, r"bogus: not an argument of intermodal_container.*environment"),
    ({"env": {"A": "1"}, "environment": {"A": "2"}}, r"'env' is an alias for 'environment'"),
    ({"environment": ["A"]}, r"environment: .*'A' is not KEY=VALUE"),
])
def test_refused_container_arguments_say_why(salt, message):
    with pytest.raises(InvalidArgument, match=message):
        common.container_options("c", {"image": "b", **salt})


def test_ports_are_exposed_ports():
    """docker_container's ports expose without publishing: community.docker's exposed_ports."""
    given = {"image": "b", "publish": ["4505-4506:14505-14506", 8080], "ports": "8080,14505,14506/tcp"}
    assert common.container_options("c", given)["exposed_ports"] == ["8080", "14505", "14506/tcp"]
    assert common.container_options("c", {"image": "b", "ports": 81})["exposed_ports"] == ["81"]


def test_docker_dns_and_extra_hosts_are_translated_to_community_docker_names():
    assert common.container_options("c", {"image": "b", "dns": "1.1.1.1,9.9.9.9", "dns_search": "a.test",
                                          "dns_opt": ["ndots:2"],
                                          "extra_hosts": "web1:10.9.8.7,web2:10.9.8.8"}) == {
        "name": "c", "state": "started", "image": "b", "dns_servers": ["1.1.1.1", "9.9.9.9"],
        "dns_search_domains": ["a.test"], "dns_opts": ["ndots:2"],
        "etc_hosts": {"web1": "10.9.8.7", "web2": "10.9.8.8"}}


def test_a_docker_argument_the_planner_lacks_is_refused_by_name(monkeypatch):
    """Refused, not dropped: an SLS must not converge to something other than what it says."""
    from intermodal.declare import options

    rows = {k: v for k, v in options.CONTAINER.items() if k != "dns_servers"}
    monkeypatch.setitem(options.TABLES, "container", rows)
    with pytest.raises(InvalidArgument, match=r"dns: docker_container's argument is not supported.*dns_servers"):
        common.container_options("c", {"image": "b", "dns": "1.1.1.1"})


@pytest.mark.parametrize(("state", "salt", "planner"), [
    ("present", {}, {"source": "pull"}),
    ("present", {"load": "/a.tar", "force": True}, {"source": "load", "load_path": "/a.tar", "force_source": True}),
    ("present", {"build": "/ctx", "dockerfile": "Containerfile", "buildargs": [{"V": "1"}]},
     {"source": "build", "build": {"path": "/ctx", "dockerfile": "/ctx/Containerfile", "args": {"V": "1"}}}),
    ("present", {"insecure_registry": True}, {"source": "pull", "validate_certs": False}),
    ("absent", {"force": True}, {"force_absent": True}),
])
def test_image_names(state, salt, planner):
    assert common.image_options("busybox", salt, state=state) == {"name": "busybox", "state": state, **planner}


def test_image_build_and_load_exclude_each_other():
    with pytest.raises(InvalidArgument, match=r"Only one of 'build' or 'load'"):
        common.image_options("x", {"build": "/ctx", "load": "/a.tar"})


@pytest.mark.parametrize(("salt", "planner"), [
    ({"driver_opts": [{"com.docker.network.driver.mtu": "1400"}], "subnet": "10.9.0.0/24", "gateway": "10.9.0.1"},
     {"driver_options": {"com.docker.network.driver.mtu": "1400"},
      "ipam_config": [{"subnet": "10.9.0.0/24", "gateway": "10.9.0.1"}]}),
    ({"ipam_pools": [{"subnet": "10.9.0.0/24", "ip_range": "10.9.0.0/25"}], "internal": True, "labels": ["a=b"]},
     {"ipam_config": [{"subnet": "10.9.0.0/24", "iprange": "10.9.0.0/25"}], "internal": True, "labels": {"a": "b"}}),
    ({"options": "a=1,b=2", "check_duplicate": True, "scope": "local", "attachable": False, "skip_translate": None},
     {"driver_options": {"a": "1", "b": "2"}}),
    ({"driver_opt": "a=1,b", "skip_translate": "driver_opts"}, {"driver_options": {"a": "1,b"}}),
])
def test_network_names(salt, planner):
    assert common.network_options("n", salt) == {"name": "n", "state": "present", **planner}


@pytest.mark.parametrize(("salt", "message"), [
    ({"attachable": True}, r"attachable: the engine's networks have attachable False only"),
    ({"aux_addresses": {"a": "10.0.0.5"}}, r"aux_addresses: not supported"),
    ({"bogus": 1}, r"bogus: not an argument of intermodal_network"),
])
def test_refused_network_arguments_say_why(salt, message):
    with pytest.raises(InvalidArgument, match=message):
        common.network_options("n", salt)


def test_volume_force_recreates_on_a_difference():
    assert common.volume_options("v", {"driver": "local", "labels": ["a=b"], "force": True}) == {
        "name": "v", "state": "present", "recreate": "options-changed", "driver": "local", "labels": {"a": "b"}}
    assert common.volume_options("v", {"force": False}) == {"name": "v", "state": "present"}


def test_network_connected_plan():
    """connected/appends (docker_network's containers): connect what is missing, disconnect the rest."""
    from intermodal.declare import network
    from intermodal.network.store import NetworkRecord

    record = next(iter(_records()), None)
    declared = network.declare({"name": "n", "connected": ["a", "b"]})
    assert network.plan(declared, record, attached=frozenset({"b", "c"})).actions == ("disconnect:c", "connect:a")
    appended = network.declare({"name": "n", "connected": ["a"], "appends": True})
    assert network.plan(appended, record, attached=frozenset({"c"})).actions == ("connect:a",)
    assert network.plan(appended, record, attached=frozenset({"a", "c"})).actions == ()
    assert network.plan(network.declare({"name": "n", "connected": ["a"]}), None).actions == ("create", "connect:a")
    assert NetworkRecord  # the record type the planner reads


def _records():
    from intermodal.network.store import NetworkRecord

    fields = {f.name: None for f in dataclasses.fields(NetworkRecord)}
    fields.update(name="n", driver="bridge", internal=False, labels={}, options={}, subnet="10.9.0.0/24",
                  gateway="10.9.0.1", ip_range=None, mtu=1500, bridge="imbr-x")
    yield NetworkRecord(**fields)


def test_execution_module_refuses_to_load_without_root(monkeypatch):
    path = Path(common.__file__).parent / "modules" / "intermodal_mod.py"
    spec = importlib.util.spec_from_file_location("intermodal_mod_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    loaded, reason = module.__virtual__()
    assert loaded is False and "needs root" in reason
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert module.__virtual__() == "intermodal"


def test_the_entry_points_name_the_extension_dirs():
    from importlib.metadata import entry_points

    from intermodal.salt import loader

    points = {e.name: e.value for e in entry_points(group="salt.loader") if e.value.startswith("intermodal.")}
    assert points == {"module_dirs": "intermodal.salt.loader:module_dirs",
                      "states_dirs": "intermodal.salt.loader:states_dirs"}
    assert (Path(loader.module_dirs()[0]) / "intermodal_mod.py").is_file()
    assert {p.name for p in Path(loader.states_dirs()[0]).glob("intermodal_*.py")} == {
        "intermodal_container.py", "intermodal_image.py", "intermodal_network.py", "intermodal_volume.py"}
