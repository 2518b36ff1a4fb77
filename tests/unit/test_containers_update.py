"""`containers.update`'s pure parts: what a user or the planner gives, and the resources that change."""

from __future__ import annotations

import pytest

from intermodal.containers.restart import RestartPolicy
from intermodal.containers.spec import ContainerSpec
from intermodal.containers.update import live_resources, normalise
from intermodal.errors import InvalidArgument


def test_normalise_takes_text_and_spec_values_alike():
    assert normalise(restart="on-failure:3", memory="512m", cpus="1.5", pids_limit="100") == {
        "restart": RestartPolicy("on-failure", 3), "memory": 512 << 20, "cpus": 1.5, "pids_limit": 100}
    assert normalise(restart=RestartPolicy("always"), memory=1 << 30, cpus=2.0, pids_limit=7) == {
        "restart": RestartPolicy("always"), "memory": 1 << 30, "cpus": 2.0, "pids_limit": 7}
    assert normalise() == {}  # None leaves every field alone


def test_zero_lifts_a_limit():
    assert normalise(memory="0", cpus=0, pids_limit=-1) == {"memory": None, "cpus": None, "pids_limit": None}
    assert normalise(pids_limit=0) == {"pids_limit": None}


@pytest.mark.parametrize("options", [{"restart": "sometimes"}, {"memory": "lots"}, {"cpus": "x"}, {"cpus": -1},
                                     {"pids_limit": "many"}])
def test_bad_values_are_refused(options):
    with pytest.raises(InvalidArgument):
        normalise(**options)


def test_live_resources_name_only_what_changes_and_lift_explicitly():
    old = ContainerSpec.build("busybox", memory="64m", cpus=1, pids_limit=10)
    assert live_resources(old, old) == {}
    new = ContainerSpec.build("busybox", memory="128m", cpus=0.5, pids_limit=10)
    assert live_resources(old, new) == {"memory": {"limit": 128 << 20}, "cpu": {"quota": 50_000, "period": 100_000}}
    lifted = ContainerSpec.build("busybox")
    assert live_resources(old, lifted) == {"memory": {"limit": -1}, "cpu": {"quota": -1, "period": 100_000},
                                           "pids": {"limit": 0}}
