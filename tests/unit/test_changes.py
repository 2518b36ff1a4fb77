"""`--change` instructions applied to an image config, as Docker applies them."""

from __future__ import annotations

from typing import Any

import pytest

from intermodal.errors import InvalidArgument
from intermodal.images.changes import apply_changes, parse_duration


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (['CMD ["sh"]'], {"Cmd": ["sh"]}),
        (["CMD echo $HOME"], {"Cmd": ["/bin/sh", "-c", "echo $HOME"]}),
        (["cmd  [\"a\", \"b c\"]"], {"Cmd": ["a", "b c"]}),
        (["CMD []"], {"Cmd": []}),
        (["CMD [not json"], {"Cmd": ["/bin/sh", "-c", "[not json"]}),
        (['ENTRYPOINT ["/init"]'], {"Entrypoint": ["/init"]}),
        (["ENTRYPOINT exec top -b"], {"Entrypoint": ["/bin/sh", "-c", "exec top -b"]}),
        (['CMD ["x"]', 'ENTRYPOINT ["/e"]'], {"Cmd": ["x"], "Entrypoint": ["/e"]}),
        (["ENV A=1 B=\"two words\" C='$A'"], {"Env": ["A=1", "B=two words", "C=$A"]}),
        (["ENV PATH /usr/bin:/bin"], {"Env": ["PATH=/usr/bin:/bin"]}),
        (["ENV A=1", "ENV B=${A}x D=${MISSING:-dflt} E=${A:+set} F=$A"],
         {"Env": ["A=1", "B=1x", "D=dflt", "E=set", "F=1"]}),
        (["ENV A=1", "ENV A=2 B=$A"], {"Env": ["A=2", "B=1"]}),
        (["ENV A=a\\ b"], {"Env": ["A=a b"]}),
        (["WORKDIR /app"], {"WorkingDir": "/app"}),
        (["WORKDIR /app", "WORKDIR sub/../lib"], {"WorkingDir": "/app/lib"}),
        (["WORKDIR rel"], {"WorkingDir": "/rel"}),
        (["ENV D=/data", "WORKDIR $D/x"], {"Env": ["D=/data"], "WorkingDir": "/data/x"}),
        (["USER 1000:1000"], {"User": "1000:1000"}),
        (["EXPOSE 80 53/udp 8000-8002"],
         {"ExposedPorts": {"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}, "8002/tcp": {}}}),
        (["LABEL a=b \"c d\"=\"e f\""], {"Labels": {"a": "b", "c d": "e f"}}),
        (["LABEL version 1.0 beta"], {"Labels": {"version": "1.0 beta"}}),
        (['VOLUME ["/data", "/logs"]'], {"Volumes": {"/data": {}, "/logs": {}}}),
        (["VOLUME /a /b"], {"Volumes": {"/a": {}, "/b": {}}}),
        (["STOPSIGNAL SIGINT"], {"StopSignal": "SIGINT"}),
        (["STOPSIGNAL 9"], {"StopSignal": "9"}),
        (["ONBUILD run make"], {"OnBuild": ["RUN make"]}),
        (["HEALTHCHECK NONE"], {"Healthcheck": {"Test": ["NONE"]}}),
        (["HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost/"],
         {"Healthcheck": {"Test": ["CMD-SHELL", "curl -f http://localhost/"], "Interval": 5_000_000_000,
                          "Retries": 3}}),
        (['HEALTHCHECK --timeout=1m30s CMD ["true"]'],
         {"Healthcheck": {"Test": ["CMD", "true"], "Timeout": 90_000_000_000}}),
    ],
)
def test_change(changes: list[str], expected: dict[str, Any]) -> None:
    assert apply_changes({}, changes) == expected


def test_entrypoint_clears_an_inherited_cmd() -> None:
    base = {"Cmd": ["old"], "Env": ["PATH=/bin"]}
    assert apply_changes(base, ['ENTRYPOINT ["/e"]']) == {"Entrypoint": ["/e"], "Env": ["PATH=/bin"]}
    assert base == {"Cmd": ["old"], "Env": ["PATH=/bin"]}  # the input is not modified


def test_env_replaces_in_place() -> None:
    base = {"Env": ["PATH=/bin", "HOME=/root"]}
    assert apply_changes(base, ["ENV PATH=/usr/bin"])["Env"] == ["PATH=/usr/bin", "HOME=/root"]


def test_additions_merge_with_the_base() -> None:
    base = {"ExposedPorts": {"22/tcp": {}}, "Labels": {"a": "1"}, "Volumes": {"/v": {}}}
    out = apply_changes(base, ["EXPOSE 80", "LABEL b=2", "VOLUME /w"])
    assert out == {"ExposedPorts": {"22/tcp": {}, "80/tcp": {}}, "Labels": {"a": "1", "b": "2"},
                   "Volumes": {"/v": {}, "/w": {}}}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("RUN make", "not supported"),
        ("FROM scratch", "not supported"),
        ("", "not supported"),
        ("CMD", "needs an argument"),
        ("ENV A", "needs a value"),
        ("ENV A=1 B", "KEY=VALUE"),
        ("ENV A=\"open", "unmatched"),
        ("EXPOSE 70000", "out of range"),
        ("EXPOSE 80/xyz", "protocol"),
        ("EXPOSE http", "not a port"),
        ("STOPSIGNAL no such", "signal"),
        ("ONBUILD ONBUILD CMD x", "not allowed"),
        ("HEALTHCHECK --interval=5 CMD true", "duration"),
        ("HEALTHCHECK --bogus=1 CMD true", "unknown"),
        ("HEALTHCHECK true", "NONE or CMD"),
    ],
)
def test_invalid_change(change: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as info:
        apply_changes({}, [change])
    assert "--change" in str(info.value)


@pytest.mark.parametrize(("text", "ns"), [("0", 0), ("30s", 30 * 10**9), ("1m30s", 90 * 10**9), ("500ms", 5 * 10**8),
                                          ("1.5h", 5400 * 10**9), ("10us", 10_000)])
def test_parse_duration(text: str, ns: int) -> None:
    assert parse_duration(text) == ns
