# Copyright: intermodal developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Run Ansible tasks inside intermodal containers: `imod exec` and `imod cp` on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
name: imod
short_description: Run tasks in intermodal containers
description:
  - Runs tasks inside a running container of the intermodal engine on the controller, through C(imod exec)
    (commands, with stdin for pipelining) and C(imod cp) (files both ways), as C(community.docker.docker) does
    with docker.
  - Modules need a Python inside the container (set C(ansible_python_interpreter) where discovery does not find
    it); C(raw) does not.
  - Become works inside the container with the usual methods (C(su), C(sudo)) that the image provides; with
    pipelining, modules reach Python on stdin and no file is copied.
author: intermodal developers (@intermodal)
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
    description:
      - The user commands run as inside the container (C(imod exec --user)); the container's own user when left out.
      - Files copied in for that user are written by that user, so they are its own.
    type: str
    vars:
      - name: ansible_user
      - name: ansible_imod_user
    keyword:
      - name: remote_user
  imod_root:
    description: The engine root the container lives in (left out, the engine's default C(/var/lib/intermodal)).
    type: str
    env:
      - name: IMOD_ROOT
    vars:
      - name: ansible_imod_root
  imod_path:
    description: The C(imod) executable; left out, the one next to the Python that runs Ansible, else on C(PATH).
    type: str
    vars:
      - name: ansible_imod_path
"""

EXAMPLES = r"""
# inventory.ini: containers of the default engine root, reached with this plugin
# [app]
# web ansible_connection=intermodal.containers.imod ansible_python_interpreter=/usr/bin/python3

- hosts: app
  tasks:
    - name: A file inside the container
      ansible.builtin.copy:
        dest: /etc/motd
        content: "managed by Ansible\n"
    - name: As another user of the container
      ansible.builtin.command: id -un
      become: true
      become_method: ansible.builtin.su
      become_user: nobody
"""

import os
import shutil
import subprocess
import sys

from ansible.errors import AnsibleConnectionFailure, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

display = Display()


class Connection(ConnectionBase):
    """One container; every call is one `imod` process (there is no daemon to keep a session with)."""

    transport = "intermodal.containers.imod"
    has_pipelining = True

    def _imod(self):
        path = self.get_option("imod_path")
        if path:
            return path
        # The imod of the Python that runs Ansible first: the engine the inventory plugin read.
        beside = os.path.join(os.path.dirname(sys.executable), "imod")
        found = beside if os.path.exists(beside) else shutil.which("imod")
        if not found:
            raise AnsibleConnectionFailure("imod not found on the controller: install intermodal there, or set "
                                           "ansible_imod_path to its imod")
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

    def _exec(self, argv, in_data=None, user=None):
        """`imod exec` of *argv* in the container: (rc, stdout, stderr); stdin is *in_data* or nothing."""
        cmd = [*self._base(), "exec"]
        if in_data is not None:
            cmd.append("-i")
        if user:
            cmd += ["-u", user]
        cmd += [self._container(), *argv]
        display.vvv(f"EXEC {cmd}", host=self._container())
        stdin = None if in_data is not None else subprocess.DEVNULL
        proc = subprocess.run(cmd, input=in_data, stdin=stdin, capture_output=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def exec_command(self, cmd, in_data=None, sudoable=False):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        data = to_bytes(in_data) if in_data is not None else None
        return self._exec(["/bin/sh", "-c", to_text(cmd)], data, self.get_option("remote_user"))

    def _cp(self, source, destination):
        proc = subprocess.run([*self._base(), "cp", source, destination], capture_output=True, check=False)
        if proc.returncode != 0:
            raise AnsibleConnectionFailure(f"copying {source} to {destination} failed: "
                                           f"{to_text(proc.stderr).strip()}")

    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        display.vvv(f"PUT {in_path} TO {out_path}", host=self._container())
        if not os.path.exists(to_bytes(in_path)):
            raise AnsibleFileNotFound(f"file or module does not exist: {in_path}")
        user = self.get_option("remote_user")
        if not user:
            self._cp(in_path, f"{self._container()}:{out_path}")
            return
        # imod cp keeps the controller's owner; written by the user inside, the file is the user's.
        with open(to_bytes(in_path), "rb") as f:
            rc, _out, err = self._exec(["/bin/sh", "-c", 'cat > "$0"', out_path], f.read(), user)
        if rc != 0:
            raise AnsibleConnectionFailure(f"writing {out_path} in {self._container()} as {user} failed: "
                                           f"{to_text(err).strip()}")

    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        display.vvv(f"FETCH {in_path} TO {out_path}", host=self._container())
        self._cp(f"{self._container()}:{in_path}", out_path)

    def close(self):
        super().close()
        self._connected = False
