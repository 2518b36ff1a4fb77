"""cgroups for the OCI runtime: one interface, a v1 and a v2 backend.

Use :func:`manager_for` when creating a container and
:func:`manager_from_paths` with the saved :meth:`CgroupManager.paths` for
later commands. The backend is picked from the host's layout
(:mod:`.detect`), once per process: a unified cgroup2 host gets v2, a legacy
or hybrid host (v1 controllers, maybe a controller-less cgroup2 mount) gets v1,
which also joins the cgroup2 mount on hybrid hosts.

Importing this package reads nothing; the backends are imported on use.
"""

from __future__ import annotations

from intermodal.runtime.cgroups.manager import CgroupManager

__all__ = ["CgroupManager", "import_backend", "manager_for", "manager_from_paths", "remove_stale"]


def manager_for(cgroups_path: str | None, container_id: str, *, systemd: bool = False) -> CgroupManager:
    """The manager for a new container.

    ``cgroups_path`` is OCI ``linux.cgroupsPath``: absolute ``/a/b`` (from the
    hierarchy root), relative ``a/b`` (under the runtime's own cgroup; on v2
    under its parent), ``None`` (the container id, relative, as runc does), or
    with ``systemd=True`` ``slice:prefix:name``. systemd paths are mapped to
    cgroupfs directories; if systemd runs, a warning in ``manager.warnings``
    says that systemd was not asked. Raises ``InvalidSpec`` for a bad path and
    ``RuntimeFailure`` when no cgroup hierarchy is mounted.
    """
    from intermodal.runtime.cgroups import cgpath
    from intermodal.runtime.cgroups.detect import detect

    layout = detect()
    inner = cgpath.inner(cgroups_path, container_id, systemd)
    if layout.mode == "unified":
        if not layout.unified:
            from intermodal.errors import RuntimeFailure

            raise RuntimeFailure("no cgroup hierarchy is mounted (neither cgroup2 nor cgroup v1 controllers); "
                                 "mount cgroup2 on /sys/fs/cgroup or run with cgroups disabled")
        from intermodal.runtime.cgroups.v2 import V2Manager

        mgr: CgroupManager = V2Manager(cgpath.resolve(layout.unified, inner, layout.own_in_mount(""), v2=True))
    else:
        from intermodal.runtime.cgroups.v1 import V1Manager

        paths = {name: cgpath.resolve(mnt, inner, layout.own_in_mount(name), v2=False)
                 for name, mnt in layout.v1.items()}
        unified = None
        if layout.unified:
            unified = cgpath.resolve(layout.unified, inner, layout.own_in_mount(""), v2=True)
        mgr = V1Manager(paths, unified=unified)
    if systemd and cgpath.systemd_running():
        mgr._warn("systemd cgroup path mapped to cgroupfs directly: systemd was not asked over D-Bus and "
                  "does not track this scope; use --cgroup-manager cgroupfs to silence this")
    return mgr


def manager_from_paths(paths: dict[str, str]) -> CgroupManager:
    """Rebuild the manager of an existing container from its saved ``paths()``."""
    if set(paths) <= {"unified"}:
        from intermodal.runtime.cgroups.v2 import V2Manager

        return V2Manager(paths["unified"])
    from intermodal.runtime.cgroups.v1 import V1Manager

    v1 = {k: v for k, v in paths.items() if k != "unified"}
    return V1Manager(v1, unified=paths.get("unified"))


def import_backend() -> None:
    """Import this host's backend now, for a process that has time now and a start or delete later;
    a host without cgroups is left for that start or delete to report."""
    from intermodal.runtime.cgroups.detect import detect

    try:
        layout = detect()
    except Exception:  # said by the create or delete, with its context
        return
    if layout.mode == "unified":
        from intermodal.runtime.cgroups import v2  # noqa: F401
    else:
        from intermodal.runtime.cgroups import v1  # noqa: F401


def remove_stale(parent: str, *, older_than: float) -> list[str]:
    """Remove the empty child cgroups of the absolute cgroups path *parent* named like container ids and
    made more than *older_than* seconds ago, in every hierarchy; returns their names.

    For the cgroups a container's staged stage 1 (runtime/staging.py) made and left when it and its
    launcher were killed one after the other, before any container existed to delete them. rmdir
    refuses a cgroup that holds a process or a child cgroup, so a live container keeps its own; the
    age spares one a runtime (runc too) has just made and not yet entered.
    """
    import os
    import time

    probe = "0" * 64
    try:
        homes = {os.path.dirname(path) for path in manager_for(f"{parent}/{probe}", probe).paths().values()}
    except Exception:  # no cgroups on this host, or a path we cannot map: nothing of ours to remove
        return []
    removed: set[str] = set()
    deadline = time.time() - older_than
    for home in homes:
        try:
            names = os.listdir(home)
        except OSError:
            continue
        for name in names:
            if len(name) != 64 or not all(c in "0123456789abcdef" for c in name):
                continue
            path = os.path.join(home, name)
            try:
                if os.stat(path).st_mtime < deadline:
                    os.rmdir(path)
                    removed.add(name)
            except OSError:
                continue  # in use (EBUSY, ENOTEMPTY) or gone meanwhile
    return sorted(removed)
