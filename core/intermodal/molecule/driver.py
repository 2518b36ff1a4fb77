"""Molecule's view of intermodal: names, connection options and the create/destroy playbooks beside this file.

A scenario says::

    driver:
      name: intermodal
    platforms:
      - name: instance
        image: intermodal/busybox:latest   # built from the host's busybox-static when missing
        host_python: true                  # lend the host's /usr read-only: Ansible modules run inside

The engine root is the engine's (IMOD_ROOT or /var/lib/intermodal), so a test sets IMOD_ROOT for
`molecule test` and every step (create, converge, verify, destroy, `molecule login`) uses it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from molecule.api import Driver

from intermodal.paths import DEFAULT_ROOT

# Where an instance finds Python when the host lends its /usr (the `host_python` platform option).
HOST_PYTHON = "/usr/bin/python3"


class Intermodal(Driver):
    """Instances are containers of the intermodal engine on this host."""

    title = "intermodal containers on this host, reached through the intermodal.containers.imod connection plugin"

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._name = "intermodal"

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = value

    @property
    def root(self) -> str:
        return os.environ.get("IMOD_ROOT") or str(DEFAULT_ROOT)

    @property
    def login_cmd_template(self) -> str:
        imod = shutil.which("imod") or "imod"
        return f"{imod} --root {self.root} exec -it -e COLUMNS={{columns}} -e LINES={{lines}} {{instance}} sh"

    @property
    def default_safe_files(self) -> list[str]:
        return []

    @property
    def default_ssh_connection_options(self) -> list[str]:
        return []

    def login_options(self, instance_name: str) -> dict[str, str]:
        return {"instance": instance_name}

    def ansible_connection_options(self, instance_name: str) -> dict[str, Any]:
        options: dict[str, Any] = {"ansible_connection": "intermodal.containers.imod", "ansible_imod_root": self.root}
        platform = self._platform(instance_name)
        python = platform.get("python") or (HOST_PYTHON if platform.get("host_python", True) else None)
        if python:
            options["ansible_python_interpreter"] = python
        return options

    def sanity_checks(self) -> None:
        from molecule.util import sysexit_with_message

        if os.geteuid() != 0:
            sysexit_with_message("the intermodal driver runs containers as root: run molecule as root")
        try:
            import intermodal.engine  # noqa: F401 - the create/destroy playbooks' modules need it
        except ImportError as err:
            sysexit_with_message(f"the intermodal driver needs the intermodal package ({err}): "
                                 "install it into the Python that runs molecule")

    def schema_file(self) -> str | None:
        return str(Path(self._path) / "driver.json")

    @property
    def required_collections(self) -> dict[str, str]:
        return {}

    def _platform(self, instance_name: str) -> dict[str, Any]:
        config = getattr(self, "_config", None)
        instances = config.platforms.instances if config is not None and config.platforms else []
        return next((p for p in instances if p.get("name") == instance_name), {})


class MoleculeIntermodal(Intermodal):
    """The same driver under the name molecule.yml can carry: Molecule's own schema accepts only the
    drivers it lists and names of the form `molecule-*` or `custom-*` for third-party ones."""

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._name = "molecule-intermodal"
