"""`--network` values as a table."""

from __future__ import annotations

import pytest

from intermodal.errors import InvalidArgument
from intermodal.network.modes import NetworkMode, parse_mode


@pytest.mark.parametrize(("values", "want"), [
    (None, NetworkMode("networks", ("bridge",))),
    ([], NetworkMode("networks", ("bridge",))),
    ("bridge", NetworkMode("networks", ("bridge",))),
    (["front", "back"], NetworkMode("networks", ("front", "back"))),
    ("none", NetworkMode("none")),
    ("host", NetworkMode("host")),
    ("container:web", NetworkMode("container", container="web")),
])
def test_parse_mode(values, want):
    assert parse_mode(values) == want


@pytest.mark.parametrize(("values", "message"), [
    (["host", "front"], "cannot be combined"),
    (["front", "none"], "cannot be combined"),
    ("container:", "needs a container"),
    (["a", "a"], "twice"),
])
def test_parse_mode_refuses(values, message):
    with pytest.raises(InvalidArgument, match=message):
        parse_mode(values)


@pytest.mark.parametrize(("kind", "attach", "own"), [
    ("networks", True, True), ("none", False, True), ("host", False, False), ("container", False, False),
])
def test_mode_properties(kind, attach, own):
    mode = NetworkMode(kind)
    assert mode.needs_attach is attach and mode.own_namespace is own
