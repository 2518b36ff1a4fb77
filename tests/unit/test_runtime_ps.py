"""runtime.ps.keep: `ps` output filtered by its PID column, as `runc ps` does."""

from __future__ import annotations

import pytest

from intermodal.errors import InvalidArgument
from intermodal.runtime.ps import keep

EF = """UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 03:00 ?        00:00:01 /sbin/init
root         812     700  0 03:01 ?        00:00:00 sleep 60
root        8120     700  0 03:01 ?        00:00:00 sh -c echo 812
"""


@pytest.mark.parametrize(("output", "pids", "kept"), [
    (EF, [812], ["812"]),
    (EF, [812, 8120], ["812", "8120"]),
    (EF, [], []),
    ("  PID COMMAND\n  812 sleep\n 9999 other\n", [812], ["812"]),  # right-aligned, other column order
])
def test_keeps_the_header_and_the_containers_lines(output, pids, kept):
    lines = keep(output, pids, ["-ef"]).splitlines()
    column = lines[0].split().index("PID")
    assert [ln.split()[column] for ln in lines[1:]] == kept


def test_output_without_a_pid_column_is_refused():
    with pytest.raises(InvalidArgument, match="no PID column"):
        keep("COMMAND\nsleep\n", [1], ["-o", "comm"])
