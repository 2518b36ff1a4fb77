"""Which cgroup hierarchy this host has, read once per process.

Three layouts exist in the wild:

- ``unified``: one cgroup2 mount (normally /sys/fs/cgroup), every controller
  in it. Typical today (systemd >= 247 default).
- ``hybrid``: v1 controllers under /sys/fs/cgroup/<controller>, plus a cgroup2
  mount (normally /sys/fs/cgroup/unified) that holds no controller, or only
  the ones no v1 hierarchy claimed (hugetlb on some hosts). Controllers come
  from v1; the cgroup2 mount is joined too, as runc does, so tools that look
  there (systemd, cgroup.events) see the container. crun 1.8 refuses this
  layout; we must not.
- ``legacy``: v1 only.

The answer comes from /proc/self/mountinfo (not from path guesses), and the
process's own cgroups from /proc/self/cgroup (relative cgroupsPath values are
resolved against those).
"""

from __future__ import annotations

from intermodal.records import Frozen, factory


class Layout(Frozen):
    mode: str                                  # "unified" | "hybrid" | "legacy"
    unified: str | None = None                 # cgroup2 mount point
    v1: dict[str, str] = factory(dict)   # controller or "name=X" -> mount point
    own: dict[str, str] = factory(dict)  # same keys, "" for v2 -> our own cgroup path
    v2_controllers: frozenset[str] = frozenset()       # listed in the cgroup2 root's cgroup.controllers
    roots: dict[str, str] = factory(dict)  # same keys: the cgroup each mount shows as its /

    def own_in_mount(self, key: str) -> str:
        """Our cgroup for ``key`` as a path inside its mount.

        Without a cgroup namespace, a bind-mounted subtree (docker-in-docker)
        shows /proc/self/cgroup paths that include the mount's root; strip it,
        as runc does, or the path would be doubled.
        """
        own, root = self.own.get(key, "/"), self.roots.get(key, "/")
        if root != "/" and (own == root or own.startswith(root.rstrip("/") + "/")):
            own = own[len(root.rstrip("/")):] or "/"
        return own

    @property
    def v1_controllers(self) -> list[str]:
        """Real v1 controllers mounted (named hierarchies excluded)."""
        return sorted(k for k in self.v1 if not k.startswith("name="))


_LAYOUT: list[Layout] = []  # the cache of detect() (not functools: ~1 ms to import in every launcher)


def detect() -> Layout:
    """The host's layout, cached: the mounts do not change under a runtime."""
    if not _LAYOUT:
        _LAYOUT.append(parse(_read("/proc/self/mountinfo"), _read("/proc/self/cgroup"), _read("/proc/cgroups"),
                             _read_controllers))
    return _LAYOUT[0]


def parse(mountinfo: str, self_cgroup: str, proc_cgroups: str, read_controllers=None) -> Layout:
    """Pure part of :func:`detect` (unit-tested with recorded files)."""
    known = {line.split()[0] for line in proc_cgroups.splitlines()
             if line and not line.startswith("#") and line.split()[-1] == "1"}
    unified: str | None = None
    v1: dict[str, str] = {}
    roots: dict[str, str] = {}
    for line in mountinfo.splitlines():
        pre, _, post = line.partition(" - ")
        fields, post_fields = pre.split(), post.split()
        if len(fields) < 5 or len(post_fields) < 3:
            continue
        fstype, mountpoint, opts = post_fields[0], _unescape(fields[4]), post_fields[2].split(",")
        if fstype == "cgroup2" and unified is None:
            unified = mountpoint  # the first one wins, as in the kernel's own listing
            roots[""] = _unescape(fields[3])
        elif fstype == "cgroup":
            for opt in opts:
                if (opt in known or opt.startswith("name=")) and opt not in v1:
                    v1[opt] = mountpoint
                    roots[opt] = _unescape(fields[3])
    own: dict[str, str] = {}
    for line in self_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, names, path = parts
        if names == "":
            own[""] = path
        for name in names.split(","):
            if name:
                own[name] = path
    has_v1 = any(not k.startswith("name=") for k in v1)
    mode = "hybrid" if has_v1 and unified else "legacy" if has_v1 else "unified"
    controllers: frozenset[str] = frozenset()
    if unified and read_controllers is not None:
        controllers = frozenset(read_controllers(unified))
    return Layout(mode=mode, unified=unified, v1=v1, own=own, v2_controllers=controllers, roots=roots)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def _read_controllers(mountpoint: str) -> list[str]:
    return _read(f"{mountpoint}/cgroup.controllers").split()


def _unescape(path: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal (\040 ...).
    if "\\" not in path:
        return path
    return path.encode().decode("unicode_escape")
