"""`--device` parsing as Docker's CLI reads it, and the healthcheck's start interval in the spec."""

from __future__ import annotations

import pytest

from intermodal.containers.devices import parse_device
from intermodal.containers.spec import ContainerSpec, Healthcheck
from intermodal.errors import InvalidArgument


@pytest.mark.parametrize("text, stored", [
    ("/dev/fuse", "/dev/fuse:/dev/fuse:rwm"),
    ("/dev/sda:/dev/xvda", "/dev/sda:/dev/xvda:rwm"),
    ("/dev/sda:r", "/dev/sda:/dev/sda:r"),  # a mode in second place is the mode, as Docker's parseDevice
    ("/dev/sda:/dev/xvda:rw", "/dev/sda:/dev/xvda:rw"),
])
def test_parse_device(text, stored):
    assert parse_device(text) == stored


@pytest.mark.parametrize("text", ["", ":/dev/x", "/dev/a:/dev/b:rwx", "/dev/a:/dev/b:rr", "/a:/b:r:x", "dev/a"])
def test_bad_devices(text):
    with pytest.raises(InvalidArgument):
        parse_device(text)


def test_spec_keeps_devices_and_start_interval_through_json():
    spec = ContainerSpec.build("busybox", devices=["/dev/fuse"],
                               healthcheck={"cmd": "true", "start_interval": "2s"})
    assert spec.devices == ("/dev/fuse:/dev/fuse:rwm",)
    assert spec.healthcheck == Healthcheck(("CMD-SHELL", "true"), start_interval=2_000_000_000)
    assert ContainerSpec.from_json(spec.to_json()) == spec
    assert "StartInterval" not in Healthcheck(("CMD", "true")).to_json()  # omitted unless set, as Docker
