"""The process: user and groups, umask, env, cwd, rlimits, noNewPrivileges, capabilities, oomScoreAdj."""

from __future__ import annotations

import pytest

from tests.support import bundle as _bundle

pytestmark = pytest.mark.requires("root", "busybox")
busybox_rootfs, busybox_bundle, created = _bundle.busybox_rootfs, _bundle.busybox_bundle, _bundle.created


def _set(**process):
    return lambda c: c["process"].update(process)


def test_uid_gid_additional_gids_and_umask(busybox_bundle, created):
    busybox_bundle.mutate(_set(user={"uid": 1000, "gid": 1001, "additionalGids": [5, 1002], "umask": 0o027}))
    out = created.run(busybox_bundle.sh("id -u; id -g; id -G; umask; touch /tmp/f; stat -c '%u %g %a' /tmp/f")).stdout
    assert out.splitlines() == ["1000", "1001", "1001 5 1002", "0027", "1000 1001 640"]


def test_env_and_cwd(busybox_bundle, created):
    busybox_bundle.mutate(_set(env=["PATH=/bin", "GREETING=hello world", "EMPTY="], cwd="/var/www"))
    out = created.run(busybox_bundle.sh('echo "$GREETING|$EMPTY|$PATH"; pwd; env | wc -l')).stdout.splitlines()
    assert out[:2] == ["hello world||/bin", "/var/www"]
    assert int(out[2]) <= 6  # the shell adds PWD, SHLVL; nothing of the runtime's environment leaks in


def test_missing_cwd_fails_create(busybox_bundle, created):
    with pytest.raises(Exception, match="chdir"):
        created.create(busybox_bundle.mutate(_set(cwd="/does/not/exist")))


def test_rlimits(busybox_bundle, created):
    busybox_bundle.mutate(_set(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456},
                                        {"type": "RLIMIT_NPROC", "soft": 77, "hard": 77}]))
    out = created.run(busybox_bundle.sh("ulimit -n; ulimit -Hn; ulimit -u")).stdout.split()
    assert out == ["123", "456", "77"]


def test_no_new_privileges_is_set(busybox_bundle, created):
    for flag, expected in ((True, "1"), (False, "0")):
        busybox_bundle.mutate(_set(noNewPrivileges=flag))
        assert created.run(busybox_bundle.sh("grep NoNewPrivs /proc/self/status")).stdout.split()[1] == expected


def test_capabilities_of_a_non_root_user(busybox_bundle, created):
    caps = {"bounding": ["CAP_NET_BIND_SERVICE", "CAP_CHOWN"], "effective": ["CAP_NET_BIND_SERVICE"],
            "permitted": ["CAP_NET_BIND_SERVICE"], "inheritable": ["CAP_NET_BIND_SERVICE"],
            "ambient": ["CAP_NET_BIND_SERVICE"]}
    busybox_bundle.mutate(_set(user={"uid": 1000, "gid": 1000}, capabilities=caps))
    out = created.run(busybox_bundle.sh("grep -E '^Cap(Eff|Bnd|Amb)' /proc/self/status")).stdout.split()
    assert dict(zip(out[::2], out[1::2], strict=True)) == {
        "CapEff:": f"{1 << 10:016x}", "CapBnd:": f"{(1 << 10) | 1:016x}", "CapAmb:": f"{1 << 10:016x}"}


def test_oom_score_adj(busybox_bundle, created):
    busybox_bundle.mutate(_set(oomScoreAdj=345))
    assert created.run(busybox_bundle.sh("cat /proc/self/oom_score_adj")).stdout.strip() == "345"


def test_sysctl(busybox_bundle, created):
    busybox_bundle.mutate(lambda c: c["linux"].__setitem__("sysctl", {"net.ipv4.ip_forward": "1"}))
    busybox_bundle.mutate(lambda c: c["linux"].__setitem__("readonlyPaths", []))
    assert created.run(busybox_bundle.sh("cat /proc/sys/net/ipv4/ip_forward")).stdout.strip() == "1"


def test_signals_are_not_ignored_in_the_container(busybox_bundle, created):
    # Python ignores SIGPIPE; an exec'd program must not inherit that (`yes | head` must end).
    out = created.run(busybox_bundle.sh("grep -E '^Sig(Ign|Blk)' /proc/self/status")).stdout.split()
    ignored = int(out[out.index("SigIgn:") + 1], 16)
    assert not ignored & (1 << 12)  # SIGPIPE (13) is bit 12
    assert int(out[out.index("SigBlk:") + 1], 16) == 0
