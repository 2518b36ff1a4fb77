"""The network, volume and image planners: declared vs recorded, pure."""

from __future__ import annotations

import pytest

from intermodal.declare import image, network, volume
from intermodal.errors import ImageNotFound, InvalidArgument
from intermodal.network.store import NetworkRecord

ID = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


def record(**kw) -> NetworkRecord:
    base = {"id": "n" * 64, "name": "backend", "bridge": "imod-nnnnnnnnn", "subnet": "172.28.0.0/24",
            "gateway": "172.28.0.1", "labels": {"tier": "backend"}}
    return NetworkRecord(**{**base, **kw})


def net_plan(options, current):
    return network.plan(network.declare({"name": "backend", **options}), current)


@pytest.mark.parametrize(("case", "options"), [
    ("nothing declared", {}),
    ("the same subnet with host bits", {"ipam_config": [{"subnet": "172.28.0.9/24"}]}),
    ("the gateway left out is the engine's", {"ipam_config": [{"subnet": "172.28.0.0/24"}]}),
    ("the gateway given", {"ipam_config": [{"subnet": "172.28.0.0/24", "gateway": "172.28.0.1"}]}),
    ("labels", {"labels": {"tier": "backend"}}),
    ("driver bridge", {"driver": "bridge"}),
    ("internal false", {"internal": False}),
    ("the MTU as a number", {"driver_options": {"com.docker.network.driver.mtu": 1500}}),
])
def test_network_same(case, options):
    assert net_plan(options, record()).actions == (), case


@pytest.mark.parametrize(("case", "options", "option"), [
    ("another subnet", {"ipam_config": [{"subnet": "172.29.0.0/24"}]}, "ipam"),
    ("a label", {"labels": {"tier": "front"}}, "labels"),
    ("a label removed", {"labels": {}}, "labels"),
    ("internal", {"internal": True}, "internal"),
    ("the MTU", {"driver_options": {"com.docker.network.driver.mtu": "1400"}}, "options"),
])
def test_network_differences_recreate(case, options, option):
    plan = net_plan(options, record())
    assert plan.actions == ("recreate",), case
    assert [d.name for d in plan.differences] == [option]


def test_network_ipv6_gateway_canonical():
    current = record(subnet6="fd00:1::/64", gateway6="fd00:1::1")
    assert net_plan({"enable_ipv6": True,
                     "ipam_config": [{"subnet": "fd00:1:0::/64", "gateway": "fd00:0001:0:0:0:0:0:1"}]},
                    current).actions == ()


@pytest.mark.parametrize(("case", "options", "current", "actions"), [
    ("60 an IPv6 pool only: the IPv4 pool is the engine's", {"enable_ipv6": True,
                                                             "ipam_config": [{"subnet": "fd00:1::/64"}]},
     {"subnet6": "fd00:1::/64", "gateway6": "fd00:1::1"}, ()),
    ("dual stack, the pools the engine's", {"enable_ipv6": True}, {"subnet6": "fd00:2::/64", "gateway6": "fd00:2::1"},
     ()),
    ("both pools", {"enable_ipv6": True, "ipam_config": [{"subnet": "172.28.0.0/24"}, {"subnet": "fd00:1::/64"}]},
     {"subnet6": "fd00:1::/64", "gateway6": "fd00:1::1"}, ()),
    ("IPv6 asked for, the network has none", {"enable_ipv6": True}, {}, ("recreate",)),
    ("IPv6 no more", {"enable_ipv6": False}, {"subnet6": "fd00:2::/64", "gateway6": "fd00:2::1"}, ("recreate",)),
    ("another IPv6 gateway", {"enable_ipv6": True, "ipam_config": [{"subnet": "fd00:1::/64", "gateway": "fd00:1::9"}]},
     {"subnet6": "fd00:1::/64", "gateway6": "fd00:1::1"}, ("recreate",)),
])
def test_network_dual_stack(case, options, current, actions):
    assert net_plan(options, record(**current)).actions == actions, case


def test_network_dual_stack_create_args():
    declared = network.declare({"name": "n", "enable_ipv6": True,
                                "ipam_config": [{"subnet": "fd00:1::/64", "gateway": "fd00:1::1"}]})
    args = network.create_args(declared)
    assert (args["ipv6"], args["subnet6"], args["gateway6"], args["subnet"]) == (True, "fd00:1::/64", "fd00:1::1", None)


def test_network_create_remove_force():
    assert net_plan({}, None).actions == ("create",)
    assert net_plan({"state": "absent"}, record()).actions == ("remove",)
    assert net_plan({"state": "absent"}, None).actions == ()
    assert net_plan({"force": True}, record()).actions == ("recreate",)


@pytest.mark.parametrize(("options", "message"), [
    ({"ipam_config": [{"subnet": "fd00:1::/64"}]}, "enable_ipv6"),
    ({"ipam_config": [{"subnet": "10.0.0.0/24", "aux_addresses": {"a": "10.0.0.5"}}]}, "aux_addresses"),  # 59
    ({"ipam_config": [{"subnet": "10.0.0.0/24"}, {"subnet": "10.0.1.0/24"}]}, "one IPv4 and one IPv6 pool"),
    ({"ipam_config": [{"gateway": "10.0.0.1"}]}, "need a subnet"),
    ({"driver": "macvlan"}, "use bridge"),
])
def test_network_refuses_what_the_engine_cannot_do(options, message):
    with pytest.raises(InvalidArgument, match=message):
        network.declare({"name": "n", **options})


def vol(labels=None):
    return {"Name": "data", "Driver": "local", "Labels": labels or {}, "Options": {}}


def test_volume_plans():
    declare = volume.declare
    assert volume.plan(declare({"name": "data"}), None).actions == ("create",)
    assert volume.plan(declare({"name": "data", "labels": {"a": 1}}), vol({"a": "1"})).actions == ()
    assert volume.plan(declare({"name": "data", "driver": "local"}), vol()).actions == ()
    kept = volume.plan(declare({"name": "data", "labels": {"a": "2"}}), vol({"a": "1"}))  # 63
    assert kept.actions == () and kept.differences == (("labels", {"a": "2"}, {"a": "1"}),) and kept.warnings
    allowed = volume.plan(declare({"name": "data", "labels": {"a": "2"}, "recreate": "options-changed"}),
                          vol({"a": "1"}))
    assert allowed.actions == ("recreate",)
    assert volume.plan(declare({"name": "data", "recreate": "always"}), vol()).actions == ("recreate",)
    assert volume.plan(declare({"name": "data", "state": "absent"}), vol()).actions == ("remove",)
    with pytest.raises(InvalidArgument, match="no options"):
        declare({"name": "data", "driver_options": {"type": "tmpfs"}})


def img(options):
    return image.declare({"name": "app", **options})


def test_image_names_are_normalised():
    assert img({}).name == "docker.io/library/app:latest"
    assert img({"tag": "1"}).name == "docker.io/library/app:1"
    assert image.declare({"name": "app:2", "tag": "1"}).name == "docker.io/library/app:2"
    assert img({"repository": "x/y:z"}).repository == "docker.io/x/y:z"


def test_image_sources_judged_by_id():
    pull = img({"source": "pull"})
    assert image.plan(pull, image.Current(None, source_id=ID)).actions == ("pull",)
    assert image.plan(pull, image.Current(ID)).actions == ()
    forced = img({"source": "pull", "force_source": True})
    assert image.plan(forced, image.Current(ID, source_id=ID)).actions == ()  # 64: the same id
    assert image.plan(forced, image.Current(ID, source_id=OTHER)).actions == ("pull",)
    unknown = image.plan(forced, image.Current(ID, source_id=image.UNKNOWN))
    assert unknown.actions == ("pull",) and unknown.warnings
    with pytest.raises(ImageNotFound, match="set source"):
        image.plan(img({}), image.Current(None))


def test_image_tags_archives_absent():
    tag = img({"repository": "app:stable"})
    assert image.plan(tag, image.Current(ID, repository_id=ID)).actions == ()  # 65
    assert image.plan(tag, image.Current(ID)).actions == ("tag:docker.io/library/app:stable",)
    with pytest.raises(InvalidArgument, match="force_tag"):
        image.plan(tag, image.Current(ID, repository_id=OTHER))
    moved = img({"repository": "app:stable", "force_tag": True})
    assert image.plan(moved, image.Current(ID, repository_id=OTHER)).changed
    save = img({"archive_path": "/x.tar"})
    assert image.plan(save, image.Current(ID, archive_id=ID)).actions == ()
    assert image.plan(save, image.Current(ID, archive_id=OTHER)).actions == ("save:/x.tar",)
    assert image.plan(img({"state": "absent"}), image.Current(ID)).actions == ("remove",)
    assert image.plan(img({"state": "absent"}), image.Current(None)).actions == ()


def test_image_declarations_checked():
    with pytest.raises(InvalidArgument, match="load_path"):
        img({"source": "load"})
    with pytest.raises(InvalidArgument, match="source"):
        img({"source": "ftp"})


def test_image_push_only_when_the_registry_holds_another_id():
    push = img({"push": True, "repository": "reg:5000/app:1"})
    current = image.Current(ID, repository_id=ID, pushed_id=ID)
    assert image.plan(push, current).actions == ()
    assert image.plan(push, image.Current(ID, repository_id=ID)).actions == ("push:reg:5000/app:1",)
    unknown = image.plan(push, image.Current(ID, repository_id=ID, pushed_id=image.UNKNOWN))
    assert unknown.changed and unknown.warnings


def test_build_options_map_community_docker_names():
    declared = img({"source": "build", "build": {"path": "/ctx", "args": {"N": 1}, "nocache": True,
                                                "dockerfile": "Containerfile"}})
    # docker_image: a dockerfile is relative to build.path
    assert image.build_options(declared) == {"context": "/ctx", "build_args": {"N": "1"}, "no_cache": True,
                                             "dockerfile": "/ctx/Containerfile"}
    absolute = img({"source": "build", "build": {"path": "/ctx", "dockerfile": "/other/Dockerfile"}})
    assert image.build_options(absolute)["dockerfile"] == "/other/Dockerfile"
    with pytest.raises(InvalidArgument, match=r"build\.path"):
        img({"source": "build", "build": {}})
    with pytest.raises(InvalidArgument, match="not supported"):
        image.build_options(img({"source": "build", "build": {"path": "/ctx", "cache_from": ["x"]}}))
