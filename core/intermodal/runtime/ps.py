"""`ps` for one container: the host's `ps` with the caller's options, keeping the container's lines.

runc's way (`runc ps ID [ps options]`): run `ps`, find the PID column in its
header, and keep the header and the lines whose PID is one of the
container's. Docker and podman `top` pass their options through here.
"""

from __future__ import annotations

import subprocess

from intermodal.errors import InvalidArgument, RuntimeFailure

DEFAULT_ARGS = ("-ef",)


def table(pids: list[int], ps_args: list[str] | tuple[str, ...] = ()) -> str:
    """The header and the lines of `ps PS_ARGS` (default -ef) that belong to *pids*."""
    args = list(ps_args) or list(DEFAULT_ARGS)
    try:
        proc = subprocess.run(["ps", *args], capture_output=True)
    except FileNotFoundError:
        raise RuntimeFailure("the host has no `ps` command; install procps") from None
    if proc.returncode != 0:
        text = proc.stderr.decode(errors="replace").strip().splitlines()
        raise InvalidArgument(f"ps {' '.join(args)} failed: {text[0] if text else 'no message'}; "
                              "check the ps options") from None
    return keep(proc.stdout.decode(errors="replace"), pids, args)


def keep(output: str, pids: list[int], args: list[str]) -> str:
    """Filter `ps` output by its PID column (pure, for tests)."""
    lines = output.splitlines()
    if not lines:
        return ""
    header = lines[0].split()
    if "PID" not in header:
        raise InvalidArgument(f"ps {' '.join(args)} prints no PID column; add pid to the output format "
                              "(e.g. -o pid,comm)")
    column = header.index("PID")
    wanted = {str(pid) for pid in pids}
    kept = [lines[0]]
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > column and fields[column] in wanted:
            kept.append(line)
    return "\n".join(kept) + "\n"
