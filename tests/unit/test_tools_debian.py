"""The Debian mirror read from apt sources (one-line and deb822), for the debootstrap image."""

from __future__ import annotations

from pathlib import Path

import pytest

from intermodal.errors import InvalidArgument
from intermodal.tools.debian import apt_mirror

DEB822 = """Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""


@pytest.mark.parametrize(("files", "expected"), [
    ({"sources.list.d/debian.sources": DEB822}, ("http://mirror.example/debian", "bookworm")),
    ({"sources.list": "# a comment\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian trixie main\n"},
     ("http://m.example/debian", "trixie")),
    ({"sources.list": "deb http://m.example/debian-security bookworm-security main\n"
                      "deb-src http://m.example/debian bookworm main\ndeb http://m.example/debian bookworm main\n"},
     ("http://m.example/debian", "bookworm")),
    ({"sources.list.d/a.sources": "Enabled: no\nTypes: deb\nURIs: http://off.example/d\nSuites: sid\n",
      "sources.list.d/b.list": "deb http://on.example/d bookworm main\n"}, ("http://on.example/d", "bookworm")),
])
def test_apt_mirror(tmp_path: Path, files: dict[str, str], expected: tuple[str, str]):
    (tmp_path / "sources.list.d").mkdir()
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert apt_mirror(tmp_path) == expected


def test_no_mirror_says_what_to_pass(tmp_path: Path):
    (tmp_path / "sources.list.d").mkdir()
    with pytest.raises(InvalidArgument, match="--mirror"):
        apt_mirror(tmp_path)
