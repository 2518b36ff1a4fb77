"""The test helper's bound: a process that does not return fails the test with its stacks and children."""

from __future__ import annotations

import os
import re
import signal
import sys

import pytest
from tests.salt.saltenv import run_bounded


def test_a_process_that_does_not_return_fails_with_its_stacks_and_children():
    script = ("import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', 'import time; "
              "time.sleep(60)']); print('child', c.pid, flush=True); time.sleep(60)")
    with pytest.raises(AssertionError) as failed:
        run_bounded([sys.executable, "-c", script], timeout=2)
    message = str(failed.value)
    child = re.search(r"child (\d+)", message)
    if child:  # the child outlives its killed parent: ours to end, by PID
        os.kill(int(child.group(1)), signal.SIGKILL)
    assert "did not return within 2s" in message
    assert child, message
    assert 'File "<string>", line 1 in <module>' in message  # faulthandler's dump of the main thread
    assert message.count("time.sleep(60)") >= 2  # the process and its child, listed with their command lines


def test_a_process_that_returns_gives_its_output():
    done = run_bounded([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"],
                       timeout=30)
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
