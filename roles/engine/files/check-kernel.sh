#!/bin/sh
# Print each kernel feature the intermodal engine needs and this host lacks, one a line, with what to do.
# Prints nothing when all are there. Run as root by the engine role (ansible.builtin.script).
grep -qw overlay /proc/filesystems 2>/dev/null || modprobe overlay 2>/dev/null
grep -qw overlay /proc/filesystems 2>/dev/null ||
    echo "overlayfs: not in /proc/filesystems (load it: modprobe overlay, or use a kernel with CONFIG_OVERLAY_FS)"
for ns in mnt pid net uts ipc; do
    [ -e "/proc/self/ns/$ns" ] || echo "namespaces: no $ns namespace (/proc/self/ns/$ns; needs CONFIG_${ns}_NS)"
done
if [ ! -e /sys/fs/cgroup/cgroup.controllers ] && [ ! -e /sys/fs/cgroup/unified/cgroup.controllers ] &&
   [ ! -d /sys/fs/cgroup/memory ] && [ ! -d /sys/fs/cgroup/pids ]; then
    echo "cgroups: no cgroup v2 or v1 hierarchy under /sys/fs/cgroup (mount cgroup2 on /sys/fs/cgroup)"
fi
exit 0
