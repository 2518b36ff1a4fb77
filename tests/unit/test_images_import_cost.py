"""What `imod run` needs of the image and layer stores stays cheap to import, and the
shortcuts that keep it cheap (no regex for plain names and digests, the builtin
SHA-256 for small blobs) decide exactly as the full machinery does."""

from __future__ import annotations

import hashlib
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from intermodal.errors import InvalidReference
from intermodal.images import digest, reference
from tests.support.processes import module_imports

# Characters and pieces that reach every branch of the grammar, glued at random.
_PIECES = [*"abz09AZ_.-/:@ \n", "ä", "sha256:", "localhost", "docker.io", "index.docker.io", "[::1]",
           ":5000", "a" * 64, "0" * 64, "x" * 128]
_NAMES = ["busybox", "busybox:latest", "library/busybox", "a/b/c:1.0", "localhost/x", "Busybox", "a:",
          "a:-x", "a:.x", "a:_x", "a:" + "x" * 128, "a:" + "x" * 129, "a//b", "/a", "a/", "busybox\n",
          "busybox:latest\n", "0" * 64, "sha256:" + "0" * 64, "a" * 300, "x/" * 130 + "y", "a:lätest"]


def _corpus(count: int = 20000) -> list[str]:
    rnd = random.Random(4)
    return _NAMES + ["".join(rnd.choice(_PIECES) for _ in range(rnd.randint(1, 6))) for _ in range(count)]


def _groups(text: str) -> tuple[str | None, ...] | None:
    match = re.match(reference._REFERENCE, text)
    return match.group("domain", "path", "tag", "digest") if match else None


def test_plain_names_parse_as_the_pattern_parses_them() -> None:
    shortcut = 0
    for text in _corpus():
        plain = reference._plain(text)
        if plain is not None:
            shortcut += 1
            assert plain == _groups(text), text
    assert shortcut > 1000  # the corpus reaches the shortcut, not only the pattern


def test_parse_gives_the_pattern_s_result_or_error() -> None:
    for text in _corpus(5000):
        try:
            got = reference.parse(text)
        except InvalidReference:
            got = None
        groups = _groups(text)
        if groups is None or reference.looks_like_id(text):
            assert got is None, text
        elif got is not None:
            domain, path = reference._split_domain(groups[0], groups[1])
            assert (got.domain, got.path) == (domain, path), text


def test_ids_and_digests_are_told_apart_as_the_patterns_do() -> None:
    hexes = ["a" * 64, "A" * 64, "g" * 64, "a" * 63, "a" * 65, "a" * 128, "a" * 64 + "\n"]
    for text in [*_corpus(5000), *hexes, *(p + h for p in ("sha256:", "sha512:", "md5:") for h in hexes)]:
        assert reference.looks_like_id(text) == bool(re.match(reference._ID, text)), text
        assert digest.is_digest(text) == bool(re.match(digest._DIGEST, text)), text


@pytest.mark.parametrize("size", [0, 100, digest.SMALL - 1, digest.SMALL, digest.SMALL * 3])
def test_small_and_large_blobs_hash_as_hashlib_does(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    expected = "sha256:" + hashlib.sha256(data).hexdigest()
    assert digest.sha256_digest(data) == expected
    assert digest.digest_of(data, "sha256") == expected
    h = digest.hasher("sha256:", size)
    h.update(data)
    assert "sha256:" + h.hexdigest() == expected
    assert digest.digest_of(data, "sha512") == "sha512:" + hashlib.sha512(data).hexdigest()


# What `imod run` imports of images/ and storage/ (engine.images, the layer mount).
RUN_PATH = ["images/manager.py", "images/store.py", "images/blobs.py", "images/digest.py", "images/reference.py",
            "images/mediatypes.py", "storage/layers.py", "storage/drivers.py", "storage/overlay.py"]
HEAVY = {"dataclasses", "typing", "contextlib", "re", "hashlib", "ctypes", "zlib", "bz2", "lzma", "shutil", "threading",
         "urllib", "tarfile", "inspect"}


@pytest.mark.parametrize("name", RUN_PATH)
def test_run_path_modules_import_nothing_heavy(name: str) -> None:
    package = Path(digest.__file__).parent.parent
    for module in module_imports(package / name):
        assert module.split(".")[0] not in HEAVY, f"{name} imports {module} at import time"
        if module.startswith(("intermodal.images.", "intermodal.storage.")):
            # what the listed modules import of the two packages is listed (and so checked) too
            assert module.removeprefix("intermodal.").replace(".", "/") + ".py" in RUN_PATH, module


def test_what_a_container_start_imports_loads_no_heavy_module() -> None:
    heavy = ["hashlib", "_hashlib", "ctypes", "intermodal.images.manifest", "intermodal.storage.streams"]
    code = (
        "import sys\n"
        "import intermodal.images.manager, intermodal.storage.layers, intermodal.storage.overlay\n"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == ""
