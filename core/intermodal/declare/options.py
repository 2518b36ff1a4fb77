"""The option tables: one row per option a user can declare, driving everything.

Each row says how the option is typed (for the front ends' argument checks),
which stored field it fills, how a declared and a stored value are compared
by default (``strict``, ``allow_more_present``, ``ignore``), whether a
difference recreates the object or is updated in place, and which image
setting supplies the value when the user leaves it out. Names follow
community.docker (docker_container, docker_image, docker_network,
docker_volume) so playbooks port by changing module names; Salt's states use
the same rows.

Comparison defaults differ from community.docker on purpose for env, labels
and the like: we compare with the container's *stored* declaration, which
holds no image-supplied entries, so ``strict`` never reports an image value
as drift and does notice a removed entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from intermodal.errors import InvalidArgument

COMPARISONS = ("strict", "allow_more_present", "ignore")
RECREATE = "recreate"
UPDATE = "update"  # in place, where the engine can; else recreate


@dataclass(frozen=True)
class Option:
    name: str
    type: str = "str"  # str, int, bool, float, list, dict, path, raw (a string or a list)
    elements: str | None = None  # for lists
    field: str | None = None  # the stored field it fills; None: not compared (an action or a setting)
    comparison: str = "strict"
    change: str = RECREATE
    image: str | None = None  # the image config key that supplies the value when left out
    default: Any = None  # a default the front ends apply (None: "not given")
    choices: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    doc: str = ""
    required: bool = False


def _t(*rows: Option) -> dict[str, Option]:
    return {r.name: r for r in rows}


COMMON = _t(
    Option("root", "path", doc="The engine's root directory (default: the engine's, /var/lib/intermodal)."),
)

CONTAINER = _t(
    Option("name", doc="The container's name.", required=True),
    Option("state", default="started", choices=("absent", "present", "stopped", "started", "healthy"),
           doc="absent removes, present creates, stopped creates stopped, started creates and runs, healthy "
               "also waits until its healthcheck passes (as started when it has none)."),
    Option("healthy_wait_timeout", "float", default=300,
           doc="Seconds state=healthy waits for the healthcheck to pass before failing."),
    Option("image", field="image", doc="The image to run: a reference or an id; compared by image id."),
    Option("pull", default="missing", choices=("missing", "always", "never"),
           doc="When to pull the image: when missing, always (changes only if the id moves), never."),
    Option("validate_certs", "bool", default=True, aliases=("tls_verify",),
           doc="Verify the registry's TLS certificate when pulling."),
    Option("command", "raw", field="command", image="Cmd",
           doc="argv list, or a string split like a shell; [] or unset uses the image's CMD."),
    Option("entrypoint", "raw", field="entrypoint", image="Entrypoint",
           doc="argv list, or a string split like a shell; unset uses the image's ENTRYPOINT."),
    Option("env", "dict", field="env", image="Env",
           doc="Environment variables; values must be strings (quote YAML booleans)."),
    Option("env_file", "path", field="env",
           doc="A file of NAME=VALUE lines, merged under env."),
    Option("working_dir", field="workdir", image="WorkingDir", doc="The working directory."),
    Option("user", field="user", image="User", doc="User (and group) to run as: name, uid or uid:gid."),
    Option("hostname", field="hostname", doc="The container's hostname (default: its short id)."),
    Option("labels", "dict", field="labels", image="Labels", doc="Labels, on top of the image's."),
    Option("volumes", "list", "str", field="mounts", image="Volumes",
           doc="Docker -v items: /ctr, name:/ctr[:ro], /host:/ctr[:ro]."),
    Option("mounts", "list", "dict", field="mounts",
           doc="Mounts as dicts: type (bind, volume, tmpfs), source, target, read_only, propagation, "
               "tmpfs_size, tmpfs_mode, no_copy."),
    Option("tmpfs", "list", "str", field="mounts", doc="tmpfs mounts: /path[:size=64m,mode=1777]."),
    Option("network_mode", field="network",
           doc="none (a loopback only), host, bridge (the default network; default is the same) or a network's "
               "name."),
    Option("networks", "list", "dict", field="networks", change=UPDATE, comparison="allow_more_present",
           doc="Networks to join, each a dict: name, ipv4_address, aliases. The first is the container's network "
               "(see networks_cli_compatible); others are connected and disconnected in place. Networks the "
               "container joined otherwise are kept unless purge_networks (or comparisons networks: strict)."),
    Option("networks_cli_compatible", "bool", default=True,
           doc="As docker run: without network_mode the first of networks is the container's network and it "
               "joins no default bridge besides. false: network_mode's network (default bridge) first, networks "
               "as further ones."),
    Option("purge_networks", "bool", default=False,
           doc="Disconnect networks not listed in networks (the same as comparisons networks: strict)."),
    Option("exposed_ports", "list", "str", field="expose", aliases=("exposed", "expose"),
           doc="Ports exposed without publishing them (published with publish_all_ports): PORT[/PROTO]."),
    Option("publish_all_ports", "bool", field="publish_all",
           doc="Publish every exposed port (the image's and exposed_ports) on a free host port; the same as "
               "published_ports: [all]."),
    Option("dns_servers", "list", "str", field="dns",
           doc="Nameservers (IP addresses) for the container's /etc/resolv.conf instead of the host's; in order "
               "(resolvers are tried in order, so the order is compared)."),
    Option("dns_search_domains", "list", "str", field="dns_search",
           doc="DNS search domains for /etc/resolv.conf instead of the host's ([.]: none); in order."),
    Option("dns_opts", "list", "str", field="dns_options",
           doc="resolv.conf options instead of the host's, e.g. ndots:2 (compared as a set)."),
    Option("etc_hosts", "dict", field="extra_hosts",
           doc="Extra /etc/hosts entries, host name -> IP address; the value host-gateway is the gateway of the "
               "container's first network (compared as a set)."),
    Option("restart_policy", field="restart", change=UPDATE, choices=("no", "on-failure", "always", "unless-stopped"),
           doc="When the engine restarts the container."),
    Option("restart_retries", "int", field="restart", change=UPDATE,
           doc="Maximum restarts with on-failure (ignored for other policies)."),
    Option("stop_signal", field="stop_signal", image="StopSignal", doc="Signal that stops it: name or number."),
    Option("stop_timeout", "int", field="stop_timeout", doc="Seconds between the stop signal and SIGKILL."),
    Option("auto_remove", "bool", field="auto_remove", doc="Remove the container when it exits."),
    Option("interactive", "bool", field="interactive", doc="Keep stdin open."),
    Option("tty", "bool", field="tty", doc="Allocate a terminal."),
    Option("read_only", "bool", field="read_only", doc="Mount the root filesystem read-only."),
    Option("privileged", "bool", field="privileged", doc="All capabilities and devices."),
    Option("capabilities", "list", "str", field="cap_add", doc="Capabilities to add (net_admin or CAP_NET_ADMIN)."),
    Option("cap_drop", "list", "str", field="cap_drop", doc="Capabilities to drop."),
    Option("devices", "list", "str", field="devices",
           doc="Host devices: /dev/x, /dev/x:/dev/y or /dev/x:/dev/y:rwm (container path and permissions default "
               "to the host path and rwm)."),
    Option("device_cgroup_rules", "list", "str", field="device_cgroup_rules",
           doc='Device cgroup allow rules, as docker run --device-cgroup-rule: "TYPE MAJOR:MINOR PERMISSIONS", e.g. '
               '"c 1:3 rwm" or "b 8:* r" (type a, b or c; * for any number; permissions some of r, w, m), for '
               'devices the container makes itself or that appear later. Ignored with privileged (which allows '
               'every device). Compared as a set.'),
    Option("memory", field="memory", change=UPDATE, doc="Memory limit: bytes or a size such as 512m."),
    Option("cpus", "float", field="cpus", change=UPDATE, doc="CPUs, e.g. 1.5."),
    Option("pids_limit", "int", field="pids_limit", change=UPDATE, doc="Maximum number of processes."),
    Option("log_driver", choices=("json-file", "local"),
           doc="Only the engine's own log (json-file) exists; accepted for portability."),
    Option("log_options", "dict", field="log", doc="max-size and max-file of the container's log."),
    Option("healthcheck", "dict", field="healthcheck", image="Healthcheck",
           doc="test (string: CMD-SHELL; list: CMD or [NONE] to disable), interval, timeout, start_period, retries."),
    Option("init", "bool", field="init", doc="Run a small init as pid 1."),
    Option("published_ports", "list", "str", field="ports", aliases=("ports",),
           doc="Ports to publish: [ip:][host_port[-end]:]container_port[/proto]."),
    Option("image_name_mismatch", default="ignore", choices=("ignore", "recreate"),
           doc="The image is compared by id; recreate also recreates a container created from another name of "
               "the same image."),
    Option("detach", "bool", default=True,
           doc="false: a container this task starts is waited for until it exits; its output is returned "
               "(container.Output, status) and a non-zero exit fails the task."),
    Option("cleanup", "bool", default=False, doc="With detach false: remove the container once it exited."),
    Option("recreate", "bool", default=False, doc="Recreate even when nothing differs."),
    Option("restart", "bool", default=False, doc="Restart a running container that needs no recreation."),
    Option("keep_volumes", "bool", default=True,
           doc="Keep the anonymous volumes of a container that is removed or recreated (named ones are always "
               "kept)."),
    Option("comparisons", "dict",
           doc="Per option: strict, allow_more_present or ignore; '*' sets all. Overrides the defaults."),
)

NETWORK = _t(
    Option("name", doc="The network's name.", required=True),
    Option("state", default="present", choices=("absent", "present")),
    Option("driver", field="driver", default=None, choices=("bridge",), doc="Only bridge."),
    Option("driver_options", "dict", field="options", doc="Driver options, e.g. com.docker.network.driver.mtu."),
    Option("ipam_config", "list", "dict", field="ipam",
           doc="An IPv4 pool (subnet, gateway, iprange) and, with enable_ipv6, an IPv6 one (subnet, gateway); "
               "what is left out is the engine's choice and not compared."),
    Option("internal", "bool", field="internal", doc="No route out of the network."),
    Option("labels", "dict", field="labels", doc="Labels of the network."),
    Option("enable_ipv6", "bool", field="ipv6",
           doc="Dual stack: containers also get an IPv6 address (of the IPv6 pool of ipam_config, else a /64 of a "
               "random ULA prefix) and an IPv6 default route."),
    Option("force", "bool", default=False, doc="Recreate even when nothing differs."),
    Option("connected", "list", "str",
           doc="Running containers connected to the network (by name); others are disconnected unless appends."),
    Option("appends", "bool", default=False, doc="Connect the connected containers, disconnecting none."),
)

VOLUME = _t(
    Option("name", aliases=("volume_name",), doc="The volume's name.", required=True),
    Option("state", default="present", choices=("absent", "present")),
    Option("driver", field="driver", default=None, choices=("local",), doc="Only local."),
    Option("driver_options", "dict", field="options", doc="Driver options (none supported by the local driver yet)."),
    Option("labels", "dict", field="labels", doc="Labels of the volume."),
    Option("recreate", default="never", choices=("always", "never", "options-changed"),
           doc="Recreating destroys the content: never (report differences), options-changed, always."),
)

IMAGE = _t(
    Option("name", doc="The image reference (repository[:tag]) or id.", required=True),
    Option("tag", doc="A tag appended to name when name has none (default latest)."),
    Option("state", default="present", choices=("absent", "present")),
    Option("source", choices=("pull", "load", "import", "build", "local"),
           doc="Where a missing image comes from."),
    Option("force_source", "bool", default=False, doc="Pull/load/import even if present; changed if the id moves."),
    Option("force_tag", "bool", default=False, doc="Move repository's tag to this image if it names another."),
    Option("force_absent", "bool", default=False, doc="Remove the image even if other tags name it."),
    Option("load_path", "path", doc="Archive to load (source=load) or rootfs tar to import (source=import)."),
    Option("archive_path", "path", doc="Save the image to this archive (docker-archive) when it holds another id."),
    Option("repository", doc="Also tag the image as this reference (and push it there with push)."),
    Option("push", "bool", default=False, doc="Push the image (to repository when given)."),
    Option("validate_certs", "bool", default=True, aliases=("tls_verify",), doc="Verify the registry's TLS."),
    Option("platform", doc="The platform to pull, e.g. linux/amd64."),
    Option("build", "dict", doc="path, dockerfile, args, target, nocache (when the engine can build)."),
)

EXEC = _t(
    Option("container", required=True, doc="The running container's name or id."),
    Option("command", doc="The command, split like a shell; or give argv."),
    Option("argv", "list", "str", doc="The command as a list of arguments."),
    Option("chdir", doc="The working directory in the container."),
    Option("env", "dict", doc="Environment variables for the command; values must be strings."),
    Option("user", doc="The user to run as (name, uid or uid:gid)."),
    Option("stdin", doc="Text passed to the command's standard input."),
    Option("stdin_add_newline", "bool", default=True, doc="Append a newline to stdin."),
    Option("strip_empty_ends", "bool", default=True, doc="Strip trailing newlines from stdout and stderr."),
)

PRUNE = _t(
    Option("containers", "bool", default=False, doc="Remove every container that is not running."),
    Option("images", "bool", default=False, doc="Remove dangling images (unused and untagged)."),
    Option("images_all", "bool", default=False, doc="With images: remove every unused image, tagged or not."),
    Option("networks", "bool", default=False, doc="Remove user-defined networks without containers."),
    Option("volumes", "bool", default=False, doc="Remove unused anonymous volumes."),
    Option("volumes_all", "bool", default=False, doc="With volumes: remove every unused volume, named too."),
)

INFO = {
    "image_info": _t(Option("name", "list", "str", doc="Images to show; all when left out.")),
    "network_info": _t(Option("name", doc="The network to show.", required=True)),
    "volume_info": _t(Option("name", doc="The volume to show.", required=True)),
    "container_info": _t(Option("name", doc="The container to show.", required=True)),
    "host_info": _t(
        Option("images", "bool", default=False, doc="List images."),
        Option("containers", "bool", default=False, doc="List containers."),
        Option("networks", "bool", default=False, doc="List networks."),
        Option("volumes", "bool", default=False, doc="List volumes."),
    ),
}

TABLES: dict[str, dict[str, Option]] = {"container": CONTAINER, "network": NETWORK, "volume": VOLUME,
                                        "image": IMAGE, "container_exec": EXEC, "prune": PRUNE, **INFO}


def table(kind: str) -> dict[str, Option]:
    """The options of *kind* (container, network, ...), with the common ones."""
    try:
        return {**TABLES[kind], **COMMON}
    except KeyError:
        raise InvalidArgument(f"unknown kind {kind!r}: use one of {', '.join(TABLES)}") from None


def comparison_modes(kind: str, overrides: Mapping[str, str] | None) -> dict[str, str]:
    """Comparison mode per stored field: the table's default, then *overrides* (by option name or '*')."""
    rows = [r for r in table(kind).values() if r.field]
    modes = {r.field: r.comparison for r in rows}
    overrides = dict(overrides or {})
    everything = overrides.pop("*", None)
    if everything is not None:
        _check_mode("*", everything)
        modes = dict.fromkeys(modes, everything)
    by_name = {r.name: r.field for r in rows} | {f: f for f in modes}
    for name, mode in overrides.items():
        if name not in by_name:
            raise InvalidArgument(f"comparisons: unknown option {name!r}; use an option name of this module or '*'")
        _check_mode(name, mode)
        modes[by_name[name]] = mode
    return modes


def _check_mode(name: str, mode: str) -> None:
    if mode not in COMPARISONS:
        raise InvalidArgument(f"comparisons: {name}: unknown mode {mode!r}; use {', '.join(COMPARISONS)}")


def change_kind(kind: str, field: str) -> str:
    """RECREATE or UPDATE for a stored field (a field any recreate-row feeds is recreated)."""
    rows = [r for r in table(kind).values() if r.field == field]
    return UPDATE if rows and all(r.change == UPDATE for r in rows) else RECREATE
