"""The collection's modules document exactly the argument spec the declare table gives them.

The documentation is merged with the doc fragments it extends (plugins/doc_fragments), as ansible-doc does;
the argument spec written into each module file is the one module_utils makes from the table.
"""

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


def fragments() -> dict[str, dict]:
    namespace: dict = {}
    exec((ROOT / "plugins" / "doc_fragments" / "engine.py").read_text(), namespace)
    fragment = namespace["ModuleDocFragment"]
    return {"intermodal.containers.engine": yaml.safe_load(fragment.DOCUMENTATION),
            "intermodal.containers.engine.registry": yaml.safe_load(fragment.REGISTRY)}


def documentation(kind: str) -> dict:
    namespace: dict = {}
    text = (ROOT / "plugins" / "modules" / f"{kind}.py").read_text()
    exec(text.split("from ansible_collections", 1)[0], namespace)  # the doc strings only
    docs = {key: yaml.safe_load(namespace[key]) for key in ("DOCUMENTATION", "EXAMPLES", "RETURN")}
    for name in docs["DOCUMENTATION"].get("extends_documentation_fragment", []):
        fragment = fragments()[name]
        assert not set(fragment.get("options", {})) & set(docs["DOCUMENTATION"]["options"]), name
        docs["DOCUMENTATION"]["options"].update(fragment.get("options", {}))
    return docs


def written_spec(kind: str) -> dict:
    namespace: dict = {}
    text = (ROOT / "plugins" / "modules" / f"{kind}.py").read_text()
    exec(text.split("ARGUMENT_SPEC = ", 1)[1].split("\n}\n", 1)[0].join(["spec = ", "\n}\n"]), namespace)
    return namespace["spec"]


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
    assert written_spec(kind) == spec, "run scripts/ansible-docs"


@pytest.mark.parametrize("kind", MODULES)
def test_every_module_takes_root_from_the_engine_fragment(kind):
    doc = yaml.safe_load(documentation_text(kind))
    assert "intermodal.containers.engine" in doc["extends_documentation_fragment"]
    assert "root" not in doc["options"]  # documented once, in the fragment


def documentation_text(kind: str) -> str:
    namespace: dict = {}
    exec((ROOT / "plugins" / "modules" / f"{kind}.py").read_text().split("from ansible_collections", 1)[0], namespace)
    return namespace["DOCUMENTATION"]


@pytest.mark.parametrize("kind", MODULES)
def test_generated_files_are_current(kind):
    loader = importlib.machinery.SourceFileLoader("ansible_docs", str(ROOT / "scripts" / "ansible-docs"))
    spec = importlib.util.spec_from_loader("ansible_docs", loader)
    generator = importlib.util.module_from_spec(spec)
    loader.exec_module(generator)
    text = (ROOT / "plugins" / "modules" / f"{kind}.py").read_text()
    assert text == generator.render(kind), \
        "run scripts/ansible-docs after changing intermodal.declare.options"
