# Copyright: intermodal developers
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The containers of an intermodal engine root as inventory hosts, reached with the imod connection."""

from __future__ import annotations

DOCUMENTATION = r"""
name: containers
short_description: intermodal containers as inventory hosts
description:
  - Each container of an intermodal engine root on the controller becomes a host named after the
    container, reached through the C(intermodal.containers.imod) connection.
  - Hosts are grouped by status (C(running), C(stopped)), by image (C(image_<name>)) and by label
    (C(label_<key>_<value>)); C(keyed_groups), C(groups) and C(compose) add more.
  - The file name must end in C(intermodal.yml) or C(intermodal.yaml).
author: intermodal developers (@intermodal)
version_added: 0.1.0
extends_documentation_fragment:
  - constructed
options:
  plugin:
    description: The name of this plugin.
    type: str
    required: true
    choices: [intermodal.containers.containers]
  root:
    description: The engine root (default the engine's own, C(/var/lib/intermodal)).
    type: str
    env:
      - name: IMOD_ROOT
  running_only:
    description: Only running containers (tasks can run only in those).
    type: bool
    default: true
"""

EXAMPLES = r"""
# web.intermodal.yml
plugin: intermodal.containers.containers
root: /var/lib/intermodal
keyed_groups:
  - key: imod_labels.tier | default('none')
    prefix: tier
"""

import re

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable


class InventoryModule(BaseInventoryPlugin, Constructable):
    NAME = "intermodal.containers.containers"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(("intermodal.yml", "intermodal.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        try:
            from intermodal.engine import Engine
        except ImportError as err:
            raise AnsibleParserError("the intermodal engine is not importable by the Python that runs Ansible; "
                                     f"install it there (pip install intermodal): {err}") from None
        root = self.get_option("root")
        engine = Engine(root=root)
        containers = engine.containers.list() if engine.paths.containers.is_dir() else []
        for c in containers:
            if self.get_option("running_only") and c.status != "running":
                continue
            self._add(c, root)

    def _add(self, c, root):
        name = c.name
        self.inventory.add_host(name)
        labels = dict(c.spec.labels)
        hostvars = {
            "ansible_connection": "intermodal.containers.imod",
            "imod_id": c.id,
            "imod_image": c.record.get("ImageName", ""),
            "imod_image_id": c.record.get("Image", ""),
            "imod_labels": labels,
            "imod_status": c.status,
        }
        if root:
            hostvars["ansible_imod_root"] = root
        for key, value in hostvars.items():
            self.inventory.set_variable(name, key, value)
        groups = ["running" if c.status == "running" else "stopped", "image_" + _safe(hostvars["imod_image"])]
        groups += [f"label_{_safe(k)}_{_safe(v)}" for k, v in labels.items()]
        for group in groups:
            self.inventory.add_group(group)
            self.inventory.add_child(group, name)
        strict = self.get_option("strict")
        self._set_composite_vars(self.get_option("compose"), hostvars, name, strict=strict)
        self._add_host_to_composed_groups(self.get_option("groups"), hostvars, name, strict=strict)
        self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, name, strict=strict)


def _safe(text):
    return re.sub(r"[^A-Za-z0-9_]", "_", str(text))
