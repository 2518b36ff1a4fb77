"""The runtime's modules on the container start path import none of the heavy standard modules.

The monitor's launcher imports them for every container start (`python -I -S`), so
`json` (re, enum), `pathlib`, `contextlib`, `socket` (selectors), `signal` (enum),
`termios`, `functools`/`collections`, `ctypes` (struct) and `typing` would each add to it.
"""

from __future__ import annotations

import subprocess
import sys

START_PATH = [
    "intermodal.runtime.state", "intermodal.runtime.spec", "intermodal.runtime.validate",
    "intermodal.runtime.console", "intermodal.runtime.hooks", "intermodal.runtime.process",
    "intermodal.runtime.namespaces", "intermodal.runtime.mounts", "intermodal.runtime.capabilities",
    "intermodal.runtime.seccomp", "intermodal.runtime.syscalls", "intermodal.runtime.cgroups.detect",
    "intermodal.runtime.cgroups.cgpath", "intermodal.cjson", "intermodal.runtime.cabi",
]
HEAVY = ["json", "re", "enum", "pathlib", "contextlib", "socket", "selectors", "signal", "termios", "functools",
         "collections", "typing", "warnings", "dataclasses", "ctypes", "struct"]

SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
for name in sys.argv[2].split(","):
    __import__(name)
# What the start does with them: parse and save without json, build the state document.
from intermodal import cjson
from intermodal.runtime import state
cjson.dumps(cjson.loads('{"a": [1, 2.5, null, true, "x"]}'), indent=1, sort_keys=True)
state.state_json(state.Record("c", 1, 2, "/b", "/b/r", "t"), state.Status.CREATED)
print(",".join(sorted(name for name in sys.argv[3].split(",") if name in sys.modules)))
"""


def test_the_start_path_imports_nothing_heavy():
    import intermodal

    core = intermodal.__path__[0].rsplit("/", 1)[0]
    out = subprocess.run([sys.executable, "-I", "-S", "-c", SCRIPT, core, ",".join(START_PATH), ",".join(HEAVY)],
                         capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == ""
