#!/bin/sh
# Print each kernel feature the intermodal engine needs and this host lacks, one a line, with what to do.
# Prints nothing when all are there. Run as root by the engine role (ansible.builtin.script).
# Arguments (the role's intermodal_engine_kernel_* variables): the filesystems list, the namespace
# directory and the cgroup mount point to look at; the real ones by default.
filesystems=${1:-/proc/filesystems}
nsdir=${2:-/proc/self/ns}
cgroup=${3:-/sys/fs/cgroup}
grep -qw overlay "$filesystems" 2>/dev/null || { [ "$filesystems" = /proc/filesystems ] && modprobe overlay 2>/dev/null; }
grep -qw overlay "$filesystems" 2>/dev/null ||
    echo "overlayfs: not in $filesystems (load it: modprobe overlay, or use a kernel with CONFIG_OVERLAY_FS)"
for ns in mnt pid net uts ipc; do
    [ -e "$nsdir/$ns" ] || echo "namespaces: no $ns namespace ($nsdir/$ns; use a kernel built with CONFIG_NAMESPACES)"
done
if [ ! -e "$cgroup/cgroup.controllers" ] && [ ! -e "$cgroup/unified/cgroup.controllers" ] &&
   [ ! -d "$cgroup/memory" ] && [ ! -d "$cgroup/pids" ]; then
    echo "cgroups: no cgroup v2 or v1 hierarchy under $cgroup (mount cgroup2 there: mount -t cgroup2 none $cgroup)"
fi
exit 0
