"""`imod network create/ls/inspect/rm/prune/connect/disconnect`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from intermodal.cli.base import Command, Context, inspect_command, print_table
from intermodal.errors import IntermodalError, InvalidArgument


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"{what} {item!r} is not KEY=VALUE")
        out[key] = value if eq else ""
    return out


# -- create ------------------------------------------------------------------------------------------

def _configure_create(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NETWORK")
    p.add_argument("-d", "--driver", default="bridge", help="only 'bridge'")
    p.add_argument("--subnet", action="append", default=[],
                   help="CIDR, e.g. 172.20.0.0/16 (default: a free one); with --ipv6 also an IPv6 one, fd00:1::/64")
    p.add_argument("--gateway", action="append", default=[], help="gateway address (default: the subnet's first)")
    p.add_argument("--ipv6", action="store_true",
                   help="dual stack: IPv6 addresses too (default subnet: a random ULA /64)")
    p.add_argument("--ip-range", help="allocate container addresses from this sub-range")
    p.add_argument("--internal", action="store_true", help="no route out of the network")
    p.add_argument("-l", "--label", action="append", default=[], help="KEY=VALUE")
    p.add_argument("-o", "--opt", action="append", default=[],
                   help="driver options: com.docker.network.bridge.name=NAME, com.docker.network.driver.mtu=N")


def _by_family(items: list[str], what: str) -> tuple[str | None, str | None]:
    """(the IPv4 one, the IPv6 one) of repeated --subnet or --gateway values; at most one of each."""
    v4 = [i for i in items if ":" not in i]
    v6 = [i for i in items if ":" in i]
    if len(v4) > 1 or len(v6) > 1:
        raise InvalidArgument(f"give at most one IPv4 and one IPv6 {what}")
    return (v4[0] if v4 else None), (v6[0] if v6 else None)


def _run_create(ctx: Context, args: argparse.Namespace) -> int:
    subnet, subnet6 = _by_family(args.subnet, "--subnet")
    gateway, gateway6 = _by_family(args.gateway, "--gateway")
    net = ctx.engine.networks.create(args.name, subnet=subnet, gateway=gateway, ip_range=args.ip_range,
                                     internal=args.internal, labels=_pairs(args.label, "label"),
                                     options=_pairs(args.opt, "option"), driver=args.driver, ipv6=args.ipv6,
                                     subnet6=subnet6, gateway6=gateway6)
    print(net.id)
    return 0


create = Command("network create", "Create a network", _configure_create, _run_create)


# -- ls ----------------------------------------------------------------------------------------------

def _configure_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="only show network ids")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate ids")
    p.add_argument("-f", "--filter", action="append", default=[], help="name=, id=, label=KEY[=VALUE], driver=")
    p.add_argument("--format", help="'table', 'json' or a Go-style template such as '{{.Name}}'")


def _row(net, no_trunc: bool) -> dict[str, Any]:
    labels = ",".join(f"{k}={v}" for k, v in sorted(net.labels.items()))
    return {"ID": net.id if no_trunc else net.id[:12], "Name": net.name, "Driver": net.driver, "Scope": "local",
            "Internal": str(net.internal).lower(), "IPv6": str(bool(net.subnet6)).lower(), "Labels": labels,
            "CreatedAt": net.created}


def _matches(net, filters: dict[str, list[str]]) -> bool:
    for key, wanted in filters.items():
        if key == "name" and not any(w in net.name for w in wanted):
            return False
        if key == "id" and not any(net.id.startswith(w) for w in wanted):
            return False
        if key == "driver" and net.driver not in wanted:
            return False
        if key == "label":
            for w in wanted:
                k, eq, v = w.partition("=")
                if k not in net.labels or (eq and net.labels[k] != v):
                    return False
        if key not in ("name", "id", "driver", "label"):
            raise InvalidArgument(f"unknown filter {key!r}; use name, id, label or driver")
    return True


def _run_list(ctx: Context, args: argparse.Namespace) -> int:
    filters: dict[str, list[str]] = {}
    for item in args.filter:
        key, _, value = item.partition("=")
        filters.setdefault(key, []).append(value)
    nets = [n for n in ctx.engine.networks.list() if _matches(n, filters)]
    rows = [_row(n, args.no_trunc) for n in nets]
    if args.quiet:
        if rows:
            print("\n".join(r["ID"] for r in rows))
        return 0
    if args.format and args.format != "table":
        from intermodal.cli.format import render

        render(args.format, rows)
        return 0
    print_table(["NETWORK ID", "NAME", "DRIVER", "SCOPE"], ([r["ID"], r["Name"], r["Driver"], r["Scope"]]
                                                           for r in rows))
    return 0


list_networks = Command("network ls", "List networks", _configure_list, _run_list)


# -- inspect, rm, prune --------------------------------------------------------------------------------

inspect = inspect_command("network inspect", "Show the details of networks", "NETWORK", lambda e: e.networks.inspect,
                          "{{json .IPAM}}")


def _configure_remove(p: argparse.ArgumentParser) -> None:
    p.add_argument("networks", nargs="+", metavar="NETWORK")
    p.add_argument("-f", "--force", action="store_true", help="no error if the network does not exist")


def _run_remove(ctx: Context, args: argparse.Namespace) -> int:
    from intermodal.errors import NetworkNotFound

    code = 0
    for name in args.networks:
        try:
            print(ctx.engine.networks.remove(name))
        except NetworkNotFound as err:
            if not args.force:
                print(f"Error: {err}", file=sys.stderr)
                code = 1
        except IntermodalError as err:
            print(f"Error: {err}", file=sys.stderr)
            code = 1
    return code


remove = Command("network rm", "Remove networks", _configure_remove, _run_remove)


def _configure_prune(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="do not ask (there is no prompt anyway)")


def _run_prune(ctx: Context, args: argparse.Namespace) -> int:
    removed = ctx.engine.networks.prune()
    if removed:
        print("Deleted Networks:\n" + "\n".join(removed))
    return 0


prune = Command("network prune", "Remove all unused networks", _configure_prune, _run_prune)


# -- connect, disconnect -------------------------------------------------------------------------------

def _configure_connect(p: argparse.ArgumentParser) -> None:
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("--ip", help="an IPv4 address on the network's subnet")
    p.add_argument("--alias", action="append", default=[], help="another name for the container on this network")


def _run_connect(ctx: Context, args: argparse.Namespace) -> int:
    # Running or stopped: live at once; created: at its first start. Either way kept in its configuration.
    ctx.engine.containers.connect(args.container, args.network, aliases=args.alias, ipv4_address=args.ip)
    return 0


connect = Command("network connect", "Connect a container to a network", _configure_connect, _run_connect)


def _configure_disconnect(p: argparse.ArgumentParser) -> None:
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("-f", "--force", action="store_true", help="no error if it is not connected")


def _run_disconnect(ctx: Context, args: argparse.Namespace) -> int:
    ctx.engine.containers.disconnect(args.container, args.network, force=args.force)
    return 0


disconnect = Command("network disconnect", "Disconnect a container from a network", _configure_disconnect,
                     _run_disconnect)


# -- port ------------------------------------------------------------------------------------------------

def _configure_port(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("port", nargs="?", metavar="PRIVATE_PORT[/PROTO]")


def _run_port(ctx: Context, args: argparse.Namespace) -> int:
    from intermodal.errors import NotFound

    c = ctx.engine.containers.get(args.container)
    bindings = ctx.engine.networks.published_ports(c.id)
    if args.port is None:
        for b in bindings:
            print(f"{b.key()} -> {b.host_text()}")
        return 0
    port, _, proto = args.port.partition("/")
    key = f"{port}/{proto or 'tcp'}"
    found = [b for b in bindings if b.key() == key]
    if not found:
        raise NotFound(f"no public port {key} published for container {c.name}; see `imod port {c.name}`")
    for b in found:
        print(b.host_text())
    return 0


port = Command("port", "List a container's published ports, or the host address of one", _configure_port,
               _run_port)
