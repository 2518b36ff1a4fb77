"""`imod run --rm` imports what removing its container will need while the monitor starts it
(removal.preload): the runtime's delete and this host's cgroup backend, which its create did not import."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.requires("root")

SCRIPT = """
import sys
from intermodal.containers import removal
from intermodal.runtime.cgroups.detect import detect
if sys.argv[1] == "preload":
    removal.preload()
backend = "intermodal.runtime.cgroups." + ("v2" if detect().mode == "unified" else "v1")
print(",".join(m for m in ("intermodal.runtime.container", backend, "intermodal.containers.net") if m in sys.modules))
"""


def _loaded(how: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, how], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return [m for m in proc.stdout.strip().split(",") if m]


def test_the_preload_imports_the_runtime_delete_and_the_cgroup_backend():
    assert _loaded("no") == []
    assert len(_loaded("preload")) == 3
