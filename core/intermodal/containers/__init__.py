"""Containers without a daemon: `engine.containers` (manager.py) and what it is made of.

- spec.py: `ContainerSpec`, the normalised declaration (what `declare` compares);
- config.py: image config + spec -> OCI config.json, with Docker's defaults;
- create.py: all-or-nothing creation (name, rootfs, volumes, /etc files, bundle);
- prepare.py: what a start prepares (rootfs, network, terminal, the monitor's orders);
- removal.py: `rm`, a `--rm` container after its exit, `prune`;
- output.py: `logs` and `attach`; update.py: `update` (limits live, restart policy); devices.py: `--device`;
- store.py: one directory per container, records and state under locks, names;
- launch.py / monitor*.py: the per-container monitor and how `imod` talks to it;
- runtime_client.py: the OCI runtime: ours in-process (default), or runc/crun through their CLI;
- net.py: network namespaces and endpoints through `engine.networks`;
- logs.py, restart.py, status.py, inspect.py, copy.py, commit.py: one concern each.
"""
