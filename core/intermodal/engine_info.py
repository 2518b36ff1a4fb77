"""What `imod info` and the Ansible `host_info` module report."""

from __future__ import annotations

import platform
from typing import Any

from intermodal import __version__


def engine_info(engine: Any) -> dict[str, Any]:
    images = engine.images.list()
    return {
        "Version": __version__,
        "Root": str(engine.paths.root),
        "RunRoot": str(engine.paths.run_root),
        "Images": len(images),
        "KernelVersion": platform.release(),
        "Architecture": platform.machine(),
        "OperatingSystem": _os_name(),
        "DefaultRuntime": _default_runtime(engine),
    }


def _default_runtime(engine: Any) -> str:
    """What a new container gets without --runtime (Docker's `DefaultRuntime`)."""
    from intermodal.containers.runtime_client import default_runtime

    return default_runtime(engine.paths.root)


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"
