"""The default profile (Docker's, in OCI form) and the OCI -> libseccomp conversion."""

from __future__ import annotations

import errno

import pytest

from intermodal.errors import InvalidSpec
from intermodal.runtime import seccomp
from intermodal.runtime.seccomp_default import ALLOWED, CLONE_NS_FLAGS, DEFAULT_CAPS, build


def _allowed(profile: dict) -> set[str]:
    return {n for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args") for n in r["names"]}


def _rules_for(profile: dict, name: str) -> list[dict]:
    return [r for r in profile["syscalls"] if name in r["names"]]


def test_shape_and_default_action():
    p = build(None, arch="amd64", kernel=(6, 1))
    assert p["defaultAction"] == "SCMP_ACT_ERRNO" and p["defaultErrnoRet"] == errno.EPERM
    assert p["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]


@pytest.mark.parametrize("name", ["keyctl", "add_key", "request_key", "kexec_load", "swapon", "userfaultfd",
                                  "pivot_root", "mount", "unshare", "setns", "bpf", "ptrace_bogus", "init_module"])
def test_dangerous_syscalls_denied_with_default_caps(name):
    assert name not in _allowed(build(None, arch="amd64", kernel=(6, 1)))


@pytest.mark.parametrize("name", ["read", "openat", "execve", "fork", "socketpair", "statx",
                                  "io_uring_setup", "arch_prctl", "modify_ldt", "chroot", "ptrace"])
def test_normal_syscalls_allowed_with_default_caps(name):
    assert name in _allowed(build(None, arch="amd64", kernel=(6, 1)))


def test_sys_admin_unlocks_mount_family_and_unconditional_clone():
    p = build([*DEFAULT_CAPS, "CAP_SYS_ADMIN"], arch="amd64", kernel=(6, 1))
    assert {"mount", "umount2", "unshare", "setns", "clone", "clone3", "sethostname"} <= _allowed(p)
    assert all(not r.get("args") for r in _rules_for(p, "clone"))
    assert not any(r["action"] == "SCMP_ACT_ERRNO" for r in _rules_for(p, "clone3"))


def test_without_sys_admin_clone_is_filtered_and_clone3_enosys():
    p = build(["CAP_CHOWN"], arch="amd64", kernel=(6, 1))
    (clone,) = _rules_for(p, "clone")
    assert clone["args"] == [{"index": 0, "op": "SCMP_CMP_MASKED_EQ", "value": CLONE_NS_FLAGS, "valueTwo": 0}]
    (clone3,) = _rules_for(p, "clone3")
    assert clone3 == {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS}
    assert CLONE_NS_FLAGS == 0x7E020000  # NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET


def test_s390_clone_flags_are_the_second_argument():
    (clone,) = _rules_for(build([], arch="s390x", kernel=(6, 1)), "clone")
    assert clone["args"][0]["index"] == 1


@pytest.mark.parametrize(("cap", "names"), [
    ("CAP_SYS_PTRACE", {"kcmp", "pidfd_getfd", "process_madvise"}), ("CAP_SYS_MODULE", {"init_module"}),
    ("CAP_SYS_TIME", {"settimeofday", "clock_settime"}), ("CAP_SYS_BOOT", {"reboot"}),
    ("CAP_DAC_READ_SEARCH", {"open_by_handle_at"}), ("CAP_SYSLOG", {"syslog"}), ("CAP_BPF", {"bpf"}),
    ("CAP_PERFMON", {"perf_event_open"}), ("CAP_SYS_NICE", {"mbind"}), ("CAP_SYS_RAWIO", {"iopl"}),
])
def test_cap_conditional_rules(cap, names):
    assert not names & _allowed(build([], arch="amd64", kernel=(6, 1)))
    assert names <= _allowed(build([cap], arch="amd64", kernel=(6, 1)))


def test_arch_and_kernel_conditions():
    assert "arch_prctl" not in _allowed(build([], arch="arm64", kernel=(6, 1)))
    assert "set_tls" in _allowed(build([], arch="arm64", kernel=(6, 1)))
    assert "ptrace" not in _allowed(build([], arch="amd64", kernel=(4, 4)))
    assert build([], arch="arm64", kernel=(6, 1))["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]


def test_personality_and_socket_argument_rules():
    p = build([], arch="amd64", kernel=(6, 1))
    values = sorted(r["args"][0]["value"] for r in _rules_for(p, "personality"))
    assert values == [0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF]
    (sock,) = _rules_for(p, "socket")
    assert sock["args"] == [{"index": 0, "op": "SCMP_CMP_NE", "value": 40, "valueTwo": 0}]


def test_allowed_list_size_matches_docker():
    assert len(ALLOWED) == 349  # moby profiles/seccomp/default.json, unconditional allow list


# -- OCI -> libseccomp values -------------------------------------------------------------


@pytest.mark.parametrize(("name", "ret", "value"), [
    ("SCMP_ACT_ALLOW", None, 0x7FFF0000), ("SCMP_ACT_ERRNO", None, 0x00050001),
    ("SCMP_ACT_ERRNO", 38, 0x00050026), ("SCMP_ACT_KILL", None, 0), ("SCMP_ACT_KILL_PROCESS", None, 0x80000000),
    ("SCMP_ACT_TRAP", None, 0x00030000), ("SCMP_ACT_LOG", None, 0x7FFC0000), ("SCMP_ACT_TRACE", 5, 0x7FF00005),
])
def test_actions(name, ret, value):
    assert seccomp.action(name, ret, "x") == value


@pytest.mark.parametrize("name", ["SCMP_ACT_NOTIFY", "SCMP_ACT_NOPE", ""])
def test_unsupported_actions(name):
    with pytest.raises(InvalidSpec):
        seccomp.action(name, None, "linux.seccomp.syscalls[0].action")


def test_errno_ret_only_with_errno_or_trace():
    with pytest.raises(InvalidSpec, match="errnoRet"):
        seccomp.action("SCMP_ACT_ALLOW", 1, "linux.seccomp.syscalls[0]")


def test_conditions_and_split_on_repeated_index():
    args = [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 2, "valueTwo": 3,
                                                             "op": "SCMP_CMP_MASKED_EQ"}]
    assert seccomp.rule_conditions(args, "x") == [[(0, 4, 1, 0), (1, 7, 2, 3)]]
    same = [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]
    assert seccomp.rule_conditions(same, "x") == [[(0, 4, 1, 0)], [(0, 4, 2, 0)]]
    assert seccomp.rule_conditions(None, "x") == [[]]


@pytest.mark.parametrize("arg", [{"index": 6, "op": "SCMP_CMP_EQ"}, {"index": 0, "op": "EQ"}])
def test_bad_conditions(arg):
    with pytest.raises(InvalidSpec, match=r"syscalls\[3\]\.args\[0\]"):
        seccomp.rule_conditions([arg], "linux.seccomp.syscalls[3]")


def test_arch_names():
    assert seccomp.arch_name("SCMP_ARCH_X86_64") == "x86_64"
    assert seccomp.arch_name("SCMP_ARCH_AARCH64") == "aarch64"
    with pytest.raises(InvalidSpec):
        seccomp.arch_name("x86_64")


def test_compile_refuses_unknown_arch_and_flag():
    with pytest.raises(InvalidSpec, match="does not know"):
        seccomp.export_bpf({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]})
    with pytest.raises(InvalidSpec, match="unknown flag"):
        seccomp.export_bpf({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]})


def test_compile_skips_unknown_syscalls_and_default_action_rules():
    bpf = seccomp.export_bpf({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["no_such_syscall", "read"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["write"], "action": "SCMP_ACT_ERRNO"},
    ]})
    assert len(bpf) % 8 == 0 and len(bpf) > 0
