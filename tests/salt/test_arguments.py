"""Salt's docker argument names onto the planner's (pure logic): the same declaration, the same plan."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest

from intermodal.errors import InvalidArgument
from intermodal.salt import common

CORPUS = Path(__file__).resolve().parents[1] / "support" / "declarations.yml"
yaml = pytest.importorskip("yaml", reason="PyYAML comes with salt and ansible-core")


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
                                 {"name": "back", "ipv4_address": "10.1.0.5", "aliases": ["db"]}]}),
    ({"image": "b", "force": True, "insecure_registry": True}, {"image": "b", "recreate": True,
                                                                 "validate_certs": False}),
    ({"image": "b", "skip_translate": True, "__id__": "x", "require": [{"a": "b"}], "watch_action": "force"},
     {"image": "b"}),
])
def test_container_names(salt, planner):
    assert common.container_options("c", salt) == {"name": "c", "state": "started", **planner}


def test_unknown_container_argument_names_the_choices():
    with pytest.raises(InvalidArgument, match=r"dns: not an argument of intermodal_container.*environment"):
        common.container_options("c", {"image": "b", "dns": ["1.1.1.1"]})


@pytest.mark.parametrize(("state", "salt", "planner"), [
    ("present", {}, {"source": "pull"}),
    ("present", {"load": "/a.tar", "force": True}, {"source": "load", "load_path": "/a.tar", "force_source": True}),
    ("present", {"build": "/ctx", "dockerfile": "Containerfile", "buildargs": [{"V": "1"}]},
     {"source": "build", "build": {"path": "/ctx", "dockerfile": "Containerfile", "args": {"V": "1"}}}),
    ("present", {"insecure_registry": True}, {"source": "pull", "validate_certs": False}),
    ("absent", {"force": True}, {"force_absent": True}),
])
def test_image_names(state, salt, planner):
    assert common.image_options("busybox", salt, state=state) == {"name": "busybox", "state": state, **planner}


def test_image_build_and_load_exclude_each_other():
    with pytest.raises(InvalidArgument, match=r"Only one of 'build' or 'load'"):
        common.image_options("x", {"build": "/ctx", "load": "/a.tar"})


@pytest.mark.parametrize(("salt", "planner"), [
    ({"driver_opts": [{"com.docker.network.driver.mtu": "1400"}], "subnet": "10.9.0.0/24", "gateway": "10.9.0.1",
      "containers": "a,b"},
     {"driver_options": {"com.docker.network.driver.mtu": "1400"},
      "ipam_config": [{"subnet": "10.9.0.0/24", "gateway": "10.9.0.1"}], "connected": ["a", "b"]}),
    ({"ipam_pools": [{"subnet": "10.9.0.0/24"}], "internal": True, "labels": ["a=b"]},
     {"ipam_config": [{"subnet": "10.9.0.0/24"}], "internal": True, "labels": ["a=b"]}),  # the planner reads a=b
])
def test_network_names(salt, planner):
    assert common.network_options("n", salt) == {"name": "n", "state": "present", **planner}


def test_volume_force_recreates_on_a_difference():
    assert common.volume_options("v", {"driver": "local", "labels": ["a=b"], "force": True}) == {
        "name": "v", "state": "present", "recreate": "options-changed", "driver": "local", "labels": ["a=b"]}
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
