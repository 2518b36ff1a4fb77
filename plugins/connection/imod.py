# Copyright: intermodal developers
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Run Ansible tasks inside intermodal containers: `imod exec` and `imod cp` on the controller."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from ansible.errors import AnsibleConnectionFailure, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

DOCUMENTATION = r"""
name: imod
short_description: Run tasks in intermodal containers
description:
  - Runs tasks inside a running container of the intermodal engine on the controller, through C(imod exec)
    (commands, with stdin for pipelining) and C(imod cp) (files both ways), like community.docker.docker
    does with docker.
  - Modules need a Python inside the container (see ansible_python_interpreter); C(raw) and C(script) do not.
author: intermodal developers
version_added: 0.1.0
options:
  remote_addr:
    description: The container's name or id.
    type: str
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: ansible_imod_host
  remote_user:
    description: The user commands run as inside the container; the container's user when left out.
    type: str
    vars:
      - name: ansible_user
      - name: ansible_imod_user
    keyword:
      - name: remote_user
  imod_root:
    description: The engine root the container lives in (default the engine's own, C(/var/lib/intermodal)).
    type: str
    env:
      - name: IMOD_ROOT
    vars:
      - name: ansible_imod_root
  imod_path:
    description: The C(imod) executable; by default found on PATH, else next to the Python that runs Ansible.
    type: str
    vars:
      - name: ansible_imod_path
"""

display = Display()


class Connection(ConnectionBase):
    """One container; every call is one `imod` process (there is no daemon to keep a session with)."""

    transport = "intermodal.containers.imod"
    has_pipelining = True

    def _imod(self):
        path = self.get_option("imod_path")
        if path:
            return path
        found = shutil.which("imod") or os.path.join(os.path.dirname(sys.executable), "imod")
        if not os.path.exists(found):
            raise AnsibleConnectionFailure("imod not found: install intermodal on the controller or set "
                                           "ansible_imod_path")
        return found

    def _base(self):
        argv = [self._imod()]
        root = self.get_option("imod_root")
        if root:
            argv += ["--root", root]
        return argv

    def _container(self):
        return self.get_option("remote_addr")

    def _connect(self):
        super()._connect()
        if not self._connected:
            display.vvv(f"IMOD CONNECT {self._container()}", host=self._container())
            self._connected = True
        return self

    def exec_command(self, cmd, in_data=None, sudoable=False):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        argv = [*self._base(), "exec"]
        if in_data is not None:
            argv.append("-i")
        user = self.get_option("remote_user")
        if user:
            argv += ["-u", user]
        argv += [self._container(), "/bin/sh", "-c", to_text(cmd)]
        display.vvv(f"EXEC {argv}", host=self._container())
        proc = subprocess.run(argv, input=to_bytes(in_data) if in_data is not None else None,
                              stdin=None if in_data is not None else subprocess.DEVNULL, capture_output=True)
        return proc.returncode, proc.stdout, proc.stderr

    def _cp(self, source, destination):
        proc = subprocess.run([*self._base(), "cp", source, destination], capture_output=True)
        if proc.returncode != 0:
            raise AnsibleConnectionFailure(f"copying {source} to {destination} failed: "
                                           f"{to_text(proc.stderr).strip()}")

    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        display.vvv(f"PUT {in_path} TO {out_path}", host=self._container())
        if not os.path.exists(to_bytes(in_path)):
            raise AnsibleFileNotFound(f"file or module does not exist: {in_path}")
        self._cp(in_path, f"{self._container()}:{out_path}")

    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        display.vvv(f"FETCH {in_path} TO {out_path}", host=self._container())
        self._cp(f"{self._container()}:{in_path}", out_path)

    def close(self):
        super().close()
        self._connected = False
