"""Containers as `docker inspect` and `docker ps` show them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from intermodal.containers import status as st
from intermodal.containers.spec import signal_name

if TYPE_CHECKING:
    from intermodal.containers.manager import Container

ZERO_TIME = "0001-01-01T00:00:00Z"


def inspect_container(c: Container, directory: Path) -> dict[str, Any]:
    record, state, spec = c.record, c.state, c.spec
    process = _process(directory)
    args = process.get("args", [])
    return {
        "Id": c.id,
        "Created": record.get("Created", ""),
        "Path": args[0] if args else "",
        "Args": args[1:],
        "State": {
            "Status": state.get("Status", "created"),
            "Running": state.get("Status") in ("running", "paused"),
            "Paused": state.get("Status") == "paused",
            "Restarting": state.get("Status") == "restarting",
            "OOMKilled": bool(state.get("OOMKilled")),
            "Dead": state.get("Status") == "dead",
            "Pid": int(state.get("Pid") or 0) if state.get("Status") in ("running", "paused") else 0,
            "ExitCode": int(state.get("ExitCode", 0)),
            "Error": state.get("Error", ""),
            "StartedAt": state.get("StartedAt", ZERO_TIME),
            "FinishedAt": state.get("FinishedAt", ZERO_TIME),
            **({"MonitorMissing": True} if state.get("MonitorMissing") else {}),
            **({"Health": state["Health"]} if state.get("Health") else {}),
        },
        "Image": record.get("Image", ""),
        "ResolvConfPath": str(directory / "resolv.conf"),
        "HostnamePath": str(directory / "hostname"),
        "HostsPath": str(directory / "hosts"),
        "LogPath": str(directory / "container.log"),
        "Name": "/" + c.name,
        "RestartCount": int(state.get("RestartCount", 0)),
        "Driver": "overlay",
        "Platform": "linux",
        "HostConfig": {
            "Runtime": os.path.basename(record.get("Runtime", "")),  # imod-runtime, runc, crun
            "AutoRemove": spec.auto_remove,
            "Binds": [f"{m.source}:{m.target}" + (":ro" if m.readonly else "") for m in spec.mounts
                      if m.type != "tmpfs" and m.source],
            "NetworkMode": spec.network,
            "RestartPolicy": spec.restart.to_json(),
            "Privileged": spec.privileged,
            "ReadonlyRootfs": spec.read_only,
            "CapAdd": list(spec.cap_add) or None,
            "CapDrop": list(spec.cap_drop) or None,
            "Memory": spec.memory or 0,
            "NanoCpus": int((spec.cpus or 0) * 1e9),
            "PidsLimit": spec.pids_limit,
            "Devices": [dict(zip(("PathOnHost", "PathInContainer", "CgroupPermissions"), d.rsplit(":", 2),
                                 strict=True)) for d in spec.devices] or None,
            "DeviceCgroupRules": list(spec.device_cgroup_rules) or None,
            "LogConfig": {"Type": "json-file", "Config": _log_config(spec)},
            "Tmpfs": {m.target: ",".join(m.options) for m in spec.mounts if m.type == "tmpfs"} or None,
            "Dns": list(spec.dns),
            "DnsSearch": list(spec.dns_search),
            "DnsOptions": list(spec.dns_options),
            "ExtraHosts": list(spec.extra_hosts) or None,
        },
        "Mounts": [_mount(m) for m in record.get("Mounts", ())],
        "Config": {
            "Hostname": record.get("Hostname", ""),
            "User": spec.user or "",
            "Env": process.get("env", []),
            "Cmd": list(spec.command) if spec.command is not None else None,
            "Entrypoint": list(spec.entrypoint) if spec.entrypoint is not None else None,
            "Image": record.get("ImageName", ""),
            "WorkingDir": process.get("cwd", ""),
            "Labels": dict(spec.labels),
            **({"ExposedPorts": {key: {} for key in record["ExposedPorts"]}} if record.get("ExposedPorts") else {}),
            "StopSignal": signal_name(int(record.get("StopSignal", 15))),
            **({"StopTimeout": spec.stop_timeout} if spec.stop_timeout is not None else {}),
            **({"Healthcheck": record["Healthcheck"]} if record.get("Healthcheck") else {}),
            "Tty": spec.tty,
            "OpenStdin": spec.interactive,
            "AttachStdout": True,
            "AttachStderr": True,
        },
        "NetworkSettings": _network_settings(c, spec),
    }


def _network_settings(c: Container, spec: Any) -> dict[str, Any]:
    from intermodal.containers import net

    if not net.uses_network(spec):
        return {"Networks": {spec.network: {}}, "Ports": {}}
    return net.settings(c.manager.engine, c.id)


def ps_row(c: Container, *, no_trunc: bool = False, now: float | None = None) -> dict[str, Any]:
    """One `ps` line in Docker's `--format json` field names."""
    spec = c.spec
    args = _command(c)
    command = " ".join(args)
    if not no_trunc and len(command) > 20:
        command = command[:19] + "…"
    return {
        "ID": c.id if no_trunc else c.id[:12],
        "Image": c.record.get("ImageName", ""),
        "Command": json.dumps(command, ensure_ascii=False),
        "CreatedAt": c.record.get("Created", ""),
        "Status": st.describe(c.state, now),
        "State": c.status,
        "Ports": _ports(c, spec),
        "Names": c.name,
        "Labels": ",".join(f"{k}={v}" for k, v in spec.labels),
        "Mounts": ",".join(m.get("Source", "") for m in c.record.get("Mounts", ())),
        "Networks": ",".join(sorted(_network_names(c, spec))),  # as Docker's .Networks
    }


def _network_names(c: Container, spec: Any) -> list[str]:
    from intermodal.containers import net

    return net.names(c.record, spec)


def _ports(c: Container, spec: Any) -> str:
    from intermodal.containers import net

    return net.ports_text(c.manager.engine, c.id) if spec.ports or spec.publish_all else ""


def _command(c: Container) -> list[str]:
    record_args = c.record.get("Args")
    if record_args:
        return list(record_args)
    spec = c.spec
    return [*(spec.entrypoint or ()), *(spec.command or ())]


def _process(directory: Path) -> dict[str, Any]:
    try:
        return json.loads((directory / "bundle" / "config.json").read_bytes()).get("process", {})
    except (OSError, ValueError):
        return {}


def _mount(m: dict[str, Any]) -> dict[str, Any]:
    out = {"Type": m.get("Type"), "Source": m.get("HostSource") or m.get("Source", ""),
           "Destination": m.get("Target"), "Mode": "", "RW": not m.get("ReadOnly"), "Propagation": ""}
    if m.get("Type") == "volume":
        out = {**out, "Name": m.get("Source"), "Driver": "local"}
    return out


def _log_config(spec: Any) -> dict[str, str]:
    cfg = {}
    if spec.log_max_size:
        cfg["max-size"] = str(spec.log_max_size)
    if spec.log_max_file != 1:
        cfg["max-file"] = str(spec.log_max_file)
    return cfg
