"""The collection on a fleet: three engine roots as three hosts, reached over real SSH.

Each host is a Debian sshd (`sshd -D -f <config>`, started and stopped by this test by PID) listening on
its own loopback address, 127.0.0.2, .3 and .4, with host keys and a client key made here; Ansible's
`ssh` connection reaches it as root with the key and a known_hosts file the test writes (host keys
checked). One playbook with `-f 3` converges all three: the engine role, the busybox base image and the
webserver role (an image built from its Dockerfile template, a network, a volume, a healthy container
published on the host's own address). Each host is its own engine root through `module_defaults` of the
action group `group/intermodal.containers.engine`, with its own network name, subnet, bridge names and
nft table (the root's networks/config.json, as tests/support/netns.py makes them), so nothing collides.
The first run changes, the second changes nothing, `imod --root R ps` shows the server on each root,
each answers on its address, and `-e state=absent` removes it all.

The three "hosts" share this machine's filesystem, so the busybox tar the test builds is read by all.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ansible.conftest import PLAYBOOK_TIMEOUT, ROOT, ansible_playbook
from tests.support.containers import force_cleanup, leaks_after_removal
from tests.support.netns import cleanup_engine, free_subnets, isolated_networks, leaks, snapshot

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox", "nft"), pytest.mark.slow]

SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")  # sshd refuses to start without it (Debian's init script makes it)
ADDRESSES = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
IMOD = Path(sys.executable).parent / "imod"

PLAYBOOK = """\
- name: The fleet, the engine and a web server on every host
  hosts: fleet
  gather_facts: false
  vars:
    state: present
    base_image: intermodal/busybox:latest
  module_defaults:
    group/intermodal.containers.engine:
      root: "{{ imod_root }}"
  tasks:
    - name: The engine
      ansible.builtin.import_role: {name: intermodal.containers.engine}
      vars:
        intermodal_engine_venv: "{{ engine_venv }}"
        intermodal_engine_root: "{{ imod_root }}"
        intermodal_engine_unit_dir: "{{ unit_dir }}"
        intermodal_engine_link_cli: false
      when: state == "present"

    - name: Is the base image there?
      intermodal.containers.image_info: {name: ["{{ base_image }}"]}
      register: base
      when: state == "present"

    - name: The base image, from the busybox rootfs tar
      intermodal.containers.image: {name: "{{ base_image }}", source: import, load_path: "{{ busybox_tar }}"}
      when: state == "present" and base.images | length == 0

    - name: The web server
      ansible.builtin.import_role: {name: intermodal.containers.webserver}
      vars:
        webserver_root: "{{ imod_root }}"
        webserver_state: "{{ state }}"
        webserver_base_image: "{{ base_image }}"
        webserver_message: "hello from {{ inventory_hostname }}"
        webserver_bind: "{{ ansible_host }}"
        webserver_port: "{{ web_port }}"
        webserver_network: "{{ inventory_hostname }}-net"
        webserver_volume: "{{ inventory_hostname }}-www"
        webserver_subnet: "{{ web_subnet }}"
        webserver_context_dir: "{{ context_dir }}"

    - name: The base image is gone
      intermodal.containers.image: {name: "{{ base_image }}", state: absent}
      when: state == "absent"
"""


@dataclass
class Host:
    name: str
    address: str
    port: int
    root: Path
    sshd: subprocess.Popen | None = None


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)], check=True,
                   capture_output=True, timeout=30)
    return path.with_suffix(".pub").read_text().strip()


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def _listening(address: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=1):
        return True
    return False


def _start_sshd(host: Host, keys: Path, authorized: Path) -> subprocess.Popen:
    config = keys / f"sshd-{host.name}.conf"
    config.write_text("\n".join([
        f"Port {host.port}", f"ListenAddress {host.address}", f"HostKey {keys / f'host-{host.name}'}",
        f"PidFile {keys / f'sshd-{host.name}.pid'}", f"AuthorizedKeysFile {authorized}",
        "PermitRootLogin prohibit-password", "PubkeyAuthentication yes", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", "PrintMotd no",
        "Subsystem sftp internal-sftp", "LogLevel VERBOSE", ""]))
    log = open(keys / f"sshd-{host.name}.log", "wb")  # noqa: SIM115 - sshd writes here until it is stopped
    with log:
        proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
    deadline = time.monotonic() + 10
    while not _listening(host.address, host.port):
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            raise AssertionError(f"sshd on {host.address}:{host.port} did not start: "
                                 f"{(keys / f'sshd-{host.name}.log').read_text()[-2000:]}")
        time.sleep(0.05)
    return proc


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def _stop(proc: subprocess.Popen) -> None:
    """The sshd listener and its per-connection children (a master connection Ansible left), by PID."""
    for child in _children(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGTERM)
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _close_masters(control_dir: Path) -> None:
    """Ansible's ControlPersist masters (ssh processes of ours, in the background) are told to exit."""
    for sock in control_dir.iterdir():
        subprocess.run(["ssh", "-O", "exit", "-o", f"ControlPath={sock}", "fleet"], capture_output=True, timeout=15)


def _inventory(hosts: list[Host], keys: Path, tmp: Path, busybox_tar: Path, subnets: list[str]) -> dict:
    ports = [_free_port(h.address) for h in hosts]
    return {"fleet": {
        "hosts": {h.name: {"ansible_host": h.address, "ansible_port": h.port, "imod_root": str(h.root),
                           "web_port": port, "web_subnet": subnet, "unit_dir": str(tmp / "units" / h.name),
                           "context_dir": str(tmp / "context" / h.name)}
                  for h, port, subnet in zip(hosts, ports, subnets, strict=True)},
        "vars": {"ansible_connection": "ssh", "ansible_user": "root",
                 "ansible_ssh_private_key_file": str(keys / "client"),
                 "ansible_ssh_common_args": f"-o UserKnownHostsFile={keys / 'known_hosts'} "
                                            "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes",
                 "ansible_python_interpreter": sys.executable, "engine_venv": str(Path(sys.executable).parents[1]),
                 "busybox_tar": str(busybox_tar)}}}


def _play(tmp: Path, control_dir: Path, *args: str) -> str:
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_STDOUT_CALLBACK": "default",
           "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-local"), "ANSIBLE_REMOTE_TEMP": str(tmp / "ansible-remote"),
           "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir),
           # Ansible's default less -C: compressing loopback traffic only costs CPU.
           "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=60s"}
    proc = subprocess.run([str(ansible_playbook()), "-i", str(tmp / "fleet.json"), "-f", "3",
                           str(tmp / "fleet.yml"), *args], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=PLAYBOOK_TIMEOUT)
    assert proc.returncode == 0, f"the fleet playbook failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n" \
                                 f"{proc.stderr[-3000:]}"
    return proc.stdout


def _changed(stdout: str, hosts: list[Host]) -> dict[str, int]:
    out = {}
    for h in hosts:
        found = re.search(rf"^{h.name}\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0\b", stdout, re.M)
        assert found, f"no recap for {h.name} with failed=0 in:\n{stdout[-3000:]}"
        out[h.name] = int(found.group(1))
    return out


def _ps(root: Path, *args: str) -> str:
    proc = subprocess.run([str(IMOD), "--root", str(root), "ps", *args, "--format", "{{.Names}} {{.Status}}"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _get(address: str, port: int) -> str:
    with urllib.request.urlopen(f"http://{address}:{port}/", timeout=5) as resp:
        return resp.read().decode()


@pytest.fixture
def fleet(tmp_path: Path):
    """Three engine roots (test network settings each) and three sshd's on 127.0.0.2-4; all gone after."""
    if not SSHD.exists() or ansible_playbook() is None:
        pytest.skip("needs Debian's openssh-server and ansible-core (scripts/setup installs them)")
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    client = _keygen(keys / "client")
    (keys / "authorized_keys").write_text(client + "\n")
    made_privsep = not PRIVSEP_DIR.exists()
    PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    hosts = []
    with contextlib.ExitStack() as stack:
        for i, address in enumerate(ADDRESSES, 1):
            root = tmp_path / f"engine{i}"
            root.mkdir()
            stack.enter_context(isolated_networks(root))  # its own nft table, bridge names, address pools
            hosts.append(Host(f"host{i}", address, _free_port(address), root))
        # Short: a ControlPath is a unix socket name (at most 107 bytes).
        control_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="imf")))
        known = []
        try:
            for h in hosts:
                known.append(f"[{h.address}]:{h.port} {_keygen(keys / f'host-{h.name}')}")
                (keys / "known_hosts").write_text("\n".join(known) + "\n")
                h.sshd = _start_sshd(h, keys, keys / "authorized_keys")
            yield hosts, keys, control_dir
        finally:
            _close_masters(control_dir)
            for h in hosts:
                if h.sshd is not None:
                    _stop(h.sshd)
            if made_privsep:
                with contextlib.suppress(OSError):
                    PRIVSEP_DIR.rmdir()
            left = [f"{h.name}: {leak}" for h in hosts for leak in leaks_after_removal(h.root)]
            for h in hosts:
                force_cleanup(h.root)
            assert not left, f"left behind on the fleet: {left}"


def test_one_playbook_converges_three_hosts_over_ssh(fleet, busybox_tar: Path, tmp_path: Path):
    from intermodal.engine import Engine

    hosts, keys, control_dir = fleet
    settings = {h.name: json.loads((h.root / "networks" / "config.json").read_text()) for h in hosts}
    tables = [s["table"] for s in settings.values()]
    assert len(set(tables)) == 3 and len({s["bridge_prefix"] for s in settings.values()}) == 3
    inventory = _inventory(hosts, keys, tmp_path, busybox_tar, free_subnets(3))
    (tmp_path / "fleet.json").write_text(json.dumps(inventory))
    (tmp_path / "fleet.yml").write_text(PLAYBOOK)
    before = snapshot()
    try:
        first = _changed(_play(tmp_path, control_dir), hosts)
        assert all(n > 0 for n in first.values()), first
        for h in hosts:
            assert re.search(r"^web Up\b.*\(healthy\)", _ps(h.root), re.M), _ps(h.root, "-a")
            hv = inventory["fleet"]["hosts"][h.name]
            assert _get(h.address, hv["web_port"]) == f"hello from {h.name}\n"
            assert (Path(hv["unit_dir"]) / "intermodal.service").read_text().count(f"--root {h.root} ") == 1
            assert [n.name for n in Engine(root=h.root).networks.list() if not n.default] == [f"{h.name}-net"]
            log = (keys / f"sshd-{h.name}.log").read_text()
            assert "Accepted publickey for root" in log, log[-2000:]  # Ansible came in through this sshd

        assert _changed(_play(tmp_path, control_dir), hosts) == {h.name: 0 for h in hosts}

        _play(tmp_path, control_dir, "-e", "state=absent")
        for h in hosts:
            assert _ps(h.root, "-a").strip() == ""
            engine = Engine(root=h.root)
            assert engine.images.list() == []
            assert [n.name for n in engine.networks.list() if not n.default] == []
    finally:
        for h in hosts:
            engine = Engine(root=h.root)
            if engine.paths.containers.is_dir():
                for c in engine.containers.list():
                    engine.containers.remove(c.id, force=True, volumes=True)
            cleanup_engine(engine, settings[h.name]["table"])
    ours = [s[k] for s in settings.values() for k in ("table", "bridge_prefix", "default_bridge")]
    left = [leak for table in tables for leak in leaks(before, table) if any(name in leak for name in ours)]
    assert not left, f"left behind by the fleet playbook: {left}"
