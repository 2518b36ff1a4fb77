# Copyright: intermodal developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Documentation shared by the modules of intermodal.containers (ansible-doc merges it into each module)."""

from __future__ import annotations


class ModuleDocFragment:
    # Every module: the engine root, where the engine must be, the action group.
    DOCUMENTATION = r"""
options:
  root:
    description:
      - The engine's root directory, where it keeps images, containers, networks and volumes.
      - Left out, the engine's default, C(/var/lib/intermodal).
      - Set it once for a play with C(module_defaults) and the group C(group/intermodal.containers.engine).
    type: path
requirements:
  - The intermodal engine, importable by the Python that runs the module on the target host. The role
    C(intermodal.containers.engine) installs it into C(/opt/intermodal); point C(ansible_python_interpreter)
    at C(/opt/intermodal/bin/python).
notes:
  - The modules run the engine in-process on the target host; there is no daemon. Where the engine is
    missing, a task fails with a message naming the engine role, before touching anything.
attributes:
  action_group:
    description: Use C(group/intermodal.containers.engine) in C(module_defaults) to set options of all its modules.
    support: full
    membership:
      - intermodal.containers.engine
"""

    # Modules that pull or push: talking to a registry.
    REGISTRY = r"""
options:
  validate_certs:
    description:
      - Verify the registry's TLS certificate when pulling or pushing.
      - Set it to V(false) only for a registry you trust, such as one on C(127.0.0.1) with a self-signed certificate.
    type: bool
    default: true
    aliases: [tls_verify]
"""
