"""The collection's modules document exactly the argument spec the declare table gives them."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py"))
yaml = pytest.importorskip("yaml", reason="PyYAML comes with ansible-core (the [ansible] extra)")
pytest.importorskip("ansible", reason="needs ansible-core (the [ansible] extra)")


@pytest.fixture(scope="module")
def common():
    link = ROOT / "collections"
    if not (link / "ansible_collections" / "intermodal" / "containers").exists():
        pytest.skip("needs the collections/ link that scripts/setup makes")
    sys.path.insert(0, str(link))
    try:
        from ansible_collections.intermodal.containers.plugins.module_utils import intermodal_common
    finally:
        sys.path.remove(str(link))
    return intermodal_common


def documentation(kind: str) -> dict:
    namespace: dict = {}
    text = (ROOT / "plugins" / "modules" / f"{kind}.py").read_text()
    exec(text.split("from ansible_collections", 1)[0], namespace)  # the doc strings only
    return {key: yaml.safe_load(namespace[key]) for key in ("DOCUMENTATION", "EXAMPLES", "RETURN")}


def test_every_module_of_the_action_group_exists():
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    assert sorted(runtime["action_groups"]["engine"]) == MODULES


@pytest.mark.parametrize("kind", MODULES)
def test_documented_options_are_the_argument_spec(common, kind):
    spec = common.argument_spec(kind)
    docs = documentation(kind)
    options = docs["DOCUMENTATION"]["options"]
    assert sorted(options) == sorted(spec)
    for name, arg in spec.items():
        doc = options[name]
        assert doc["type"] == arg["type"], name
        assert doc.get("elements") == arg.get("elements"), name
        assert doc.get("choices") == arg.get("choices"), name
        assert doc.get("default") == arg.get("default"), name
        assert bool(doc.get("required")) == bool(arg.get("required")), name
        assert doc.get("aliases") == arg.get("aliases"), name
        assert doc["description"], name
    assert docs["EXAMPLES"] and docs["RETURN"]
    assert docs["DOCUMENTATION"]["module"] == kind


@pytest.mark.parametrize("kind", MODULES)
def test_generated_files_are_current(kind):
    loader = importlib.machinery.SourceFileLoader("ansible_docs", str(ROOT / "scripts" / "ansible-docs"))
    spec = importlib.util.spec_from_loader("ansible_docs", loader)
    generator = importlib.util.module_from_spec(spec)
    loader.exec_module(generator)
    text = (ROOT / "plugins" / "modules" / f"{kind}.py").read_text()
    assert text.replace("# ruff: noqa: E501\n", "") == generator.render(kind), \
        "run scripts/ansible-docs after changing intermodal.declare.options"
