"""Which OCI runtime a new container gets: --runtime, then $IMOD_RUNTIME, then ROOT/engine.json, then ours."""

from __future__ import annotations

import json
import shutil

import pytest

from intermodal.containers.runtime_client import (
    BUILTIN,
    InProcessRuntime,
    OciRuntime,
    choose_runtime,
    default_runtime,
    runtime_for,
)
from intermodal.errors import RuntimeFailure


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.delenv("IMOD_RUNTIME", raising=False)
    return tmp_path


def _config(root, value) -> None:
    (root / "engine.json").write_text(json.dumps({"runtime": value}))


def test_ours_by_default(root):
    assert choose_runtime(None, root) == BUILTIN and default_runtime(root) == BUILTIN


@pytest.mark.skipif(not shutil.which("runc"), reason="needs runc (scripts/setup installs it)")
@pytest.mark.parametrize(("flag", "env", "config", "wanted"), [
    ("runc", None, None, "runc"),
    (None, "runc", None, "runc"),
    (None, None, "runc", "runc"),
    (BUILTIN, "runc", "runc", BUILTIN),  # the flag wins
    (None, BUILTIN, "runc", BUILTIN),  # the environment beats the file
])
def test_flag_then_environment_then_file(root, monkeypatch, flag, env, config, wanted):
    if env:
        monkeypatch.setenv("IMOD_RUNTIME", env)
    if config:
        _config(root, config)
    chosen = choose_runtime(flag, root)
    assert (chosen if chosen == BUILTIN else chosen.rsplit("/", 1)[1]) == wanted
    assert chosen == BUILTIN or chosen.startswith("/")  # another runtime is kept by its absolute path


def test_an_unknown_runtime_is_refused(root):
    with pytest.raises(RuntimeFailure, match="'no-such-runtime' not found"):
        choose_runtime("no-such-runtime", root)


@pytest.mark.parametrize("text", ["{not json", '{"runtime": 3}'])
def test_a_broken_config_file_says_which_file(root, text):
    (root / "engine.json").write_text(text)
    with pytest.raises(RuntimeFailure, match=r"engine\.json"):
        choose_runtime(None, root)


def test_the_record_picks_the_driver(tmp_path):
    ours = runtime_for(BUILTIN, tmp_path)
    assert isinstance(ours, InProcessRuntime) and ours.state_root == tmp_path / "runtime" / BUILTIN
    runc = runtime_for("/usr/bin/runc", tmp_path)
    assert isinstance(runc, OciRuntime) and runc.state_root == tmp_path / "runtime" / "runc"
