"""What a container's start prepares, under its lock: the root filesystem, network and terminal, and the
orders its monitor reads (``monitor.json``, ``health-process.json``)."""

from __future__ import annotations

import os
from pathlib import Path

from intermodal.containers.spec import ContainerSpec

TYPE_CHECKING = False  # not `typing` (~4 ms of every `imod`)
if TYPE_CHECKING:
    from typing import Any

    from intermodal.containers.manager import ContainerManager


def prepare_start(manager: ContainerManager, cid: str, record: dict[str, Any],
                  console_size: tuple[int, int] | None) -> None:
    """Before a start, under the container's lock: its rootfs, network, terminal size, /etc files and the
    monitor's orders (``monitor.json``)."""
    from intermodal.containers.store import write_json

    directory = manager.store.dir(cid)
    if not _rootfs_ready(record.get("Rootfs")):  # after a reboot (mounting again costs a locked write)
        manager.engine.images.store.layers.mount(record["DiffIds"], directory)
    runtime = manager._runtime(record)
    runtime.delete(cid, force=True)  # a leftover from a crash would block `create`
    spec = ContainerSpec.from_json(record["Spec"])
    from intermodal.containers import net

    if net.uses_network(spec):
        net.connect(manager.engine, cid, record, spec, directory)
    if spec.tty:
        _set_console_size(directory / "bundle" / "config.json", console_size)
    if not all((directory / f).stat().st_size if (directory / f).exists() else 0
               for f in ("hosts", "hostname", "resolv.conf")):
        from intermodal.containers.create import etc_files

        etc_files(directory, record["Hostname"], spec.network, spec)
    write_json(directory / "monitor.json", {
        "id": cid,
        "runtime": runtime.base,
        "inprocess": runtime.inprocess,  # create/start/delete in the monitor itself (our runtime)
        "runtime_root": str(runtime.state_root),
        "bundle": str(directory / "bundle"),
        "log_max_size": spec.log_max_size,
        "log_max_file": spec.log_max_file,
        "restart": spec.restart.to_json(),
        "restart_count": 0,
        "auto_remove": spec.auto_remove,
        "root": str(manager.engine.paths.root),
        "run_root": str(manager.engine.paths.run_root),
        "core": str(Path(__file__).resolve().parents[2]),
        "lock": str(manager.store.lock_path(cid)),
        "oom_control": _oom_file(cid),
        "tty": spec.tty,
        "console_socket": console_socket(manager, cid),
        "console_size": list(console_size) if console_size else None,
        "healthcheck": _health_for_monitor(directory, record.get("Healthcheck")),
    })


def console_socket(manager: ContainerManager, cid: str) -> str:
    """Where the runtime sends a `--tty` container's terminal: a short path, else an abstract socket."""
    path = manager.engine.paths.run_root / "console" / f"{cid[:16]}.sock"
    return str(path) if len(str(path)) < 100 else f"@intermodal-{cid[:32]}"


def _health_for_monitor(directory: Path, check: dict[str, Any] | None) -> dict[str, Any] | None:
    """Write the test's OCI process (the container's, with the test as args) and its timing, in seconds."""
    if not check:
        return None
    import json

    from intermodal.containers.config import health_argv
    from intermodal.containers.store import write_json

    process = json.loads((directory / "bundle" / "config.json").read_bytes())["process"]
    process.update({"args": health_argv(check["Test"]), "terminal": False})
    process.pop("consoleSize", None)
    write_json(directory / "health-process.json", process)
    return {"interval": check["Interval"] / 1e9, "timeout": check["Timeout"] / 1e9,
            "start_period": check["StartPeriod"] / 1e9, "retries": check["Retries"],
            "start_interval": (check.get("StartInterval") or check["Interval"]) / 1e9}


def _set_console_size(bundle: Path, size: tuple[int, int] | None) -> None:
    """The runtime sizes the terminal before the process starts, so its first `stty size` is right."""
    import json

    from intermodal.containers.store import write_json_durable

    config = json.loads(bundle.read_bytes())
    process = config["process"]
    if size:
        process["consoleSize"] = {"height": size[0], "width": size[1]}
    else:
        process.pop("consoleSize", None)
    write_json_durable(bundle, config)


def _rootfs_ready(rootfs: str | None) -> bool:
    """The container's root filesystem as `create` left it: overlay's ``merged`` mounted, vfs's copy present."""
    if not rootfs:
        return False
    return os.path.ismount(rootfs) if os.path.basename(rootfs) == "merged" else os.path.isdir(rootfs)


def _oom_file(cid: str) -> str | None:
    """The file whose `oom_kill N` line counts the OOM kills in the container's cgroup."""
    if os.path.isdir("/sys/fs/cgroup/memory"):
        return f"/sys/fs/cgroup/memory/intermodal/{cid}/memory.oom_control"  # cgroup v1 (also hybrid)
    return f"/sys/fs/cgroup/intermodal/{cid}/memory.events"
