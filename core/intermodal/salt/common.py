"""What the execution module and the states share: the engine, Salt's argument names, a plan as a return.

Salt's docker states name their arguments after docker-py (`environment`,
`binds`, `port_bindings`, `mem_limit`, ...); the planner names them after
community.docker. `*_options` translate the first into the second (the
planner's own names are accepted too), so an SLS written for docker_container
ports by renaming the states, and the same declaration gives the Ansible
module and the Salt state one plan. No comparison happens here: decisions are
`intermodal.declare`'s. Nothing imports Salt at module level.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from intermodal.errors import InvalidArgument

if TYPE_CHECKING:
    from intermodal.declare.plan import Plan
    from intermodal.engine import Engine

ROOT_OPTION = "intermodal.root"

# Keys the state compiler hands a state function besides its own arguments (requisites, globals).
STATE_KEYS = frozenset({
    "fun", "state", "name", "names", "order", "require", "require_any", "watch", "watch_any", "prereq", "onfail",
    "onfail_any", "onfail_all", "onchanges", "onchanges_any", "use", "listen", "require_in", "watch_in",
    "prereq_in", "onfail_in", "onchanges_in", "use_in", "listen_in", "onlyif", "unless", "creates", "check_cmd",
    "reload_modules", "reload_grains", "reload_pillar", "retry", "parallel", "saltenv", "runas",
    "runas_password", "fire_event", "sfun", "batch", "queue", "concurrent", "kwarg",
})

RUN_WAIT = 3600  # seconds a one-shot container (state run, intermodal.run) is waited for by default

# Salt's aliases of docker_container arguments -> the docker-py name they stand for (Salt's translate module).
CONTAINER_ALIASES = {
    "cmd": "command", "env": "environment", "rm": "auto_remove", "workdir": "working_dir", "publish": "port_bindings",
    "volume": "volumes", "memory": "mem_limit", "restart": "restart_policy", "stdin_open": "interactive",
    "publish_all": "publish_all_ports", "security_opts": "security_opt", "sysctl": "sysctls", "ipc": "ipc_mode",
    "user_ns_mode": "userns_mode", "cpuset": "cpuset_cpus", "memory_swap": "memswap_limit", "dns_opts": "dns_opt",
}
# docker-py name -> the planner's (community.docker's); a name absent here is the planner's too.
CONTAINER_NAMES = {
    "command": "command", "environment": "env", "binds": "volumes", "port_bindings": "published_ports",
    "ports": "exposed_ports", "publish_all_ports": "publish_all_ports", "cap_add": "capabilities",
    "mem_limit": "memory", "log_opt": "log_options", "interactive": "interactive", "force": "recreate",
    "insecure_registry": "validate_certs", "dns": "dns_servers", "dns_search": "dns_search_domains",
    "dns_opt": "dns_opts", "extra_hosts": "etc_hosts",
}
# Accepted for portability and not managed: Docker client settings, and state arguments the states read.
CONTAINER_IGNORED = frozenset({"skip_translate", "ignore_collisions", "validate_ip_addrs", "client_timeout",
                               "shutdown_timeout", "watch_action", "skip_comparison", "failhard", "detach",
                               "send_signal"})
IMAGE_IGNORED = frozenset({"client_timeout", "saltenv", "pillarenv", "pillar"})


def clean(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The user's arguments: no `__dunder__` loader keys, no requisites or state-compiler globals."""
    return {k: v for k, v in kwargs.items() if not k.startswith("__") and k not in STATE_KEYS}


def engine_for(root: str | None, config_get: Callable[[str], Any] | None = None) -> Engine:
    """The engine at *root*, else at the minion option / pillar key `intermodal.root`, else the default."""
    from intermodal.engine import Engine

    if not root and config_get is not None:
        root = config_get(ROOT_OPTION) or None
    return Engine(root=root)


# -- Salt's argument names onto the planner's ------------------------------------------------------------


def skipped(value: Any) -> frozenset[str] | bool:
    """skip_translate: True (every argument) or a comma-separated string / list of argument names."""
    if value is None or value is False:
        return frozenset()
    if value is True:
        return True
    return frozenset(_split(value, True))


def container_options(name: str, kwargs: Mapping[str, Any], *, state: str = "started") -> dict[str, Any]:
    """docker_container arguments (docker-py names, Salt's aliases, or the planner's) as the planner's options.

    Values take every form Salt's translation accepts (comma-separated strings, lists of ``K=V`` or
    ``{K: V}`` items, docker-py's dicts); with *skip_translate* naming an argument (or True), its
    strings are not split at commas. Raises InvalidArgument, naming the argument.
    """
    from intermodal.declare.options import table

    known = table("container")
    given = clean(kwargs)
    skip = skipped(given.get("skip_translate"))
    canonical = _canonical(given, bool(given.get("ignore_collisions")))
    out: dict[str, Any] = {"name": name, "state": state}
    for key, value in canonical.items():
        if key in CONTAINER_IGNORED or value is None:
            continue
        target = CONTAINER_NAMES.get(key, key)
        if target not in known or target in ("name", "state", "root"):
            raise InvalidArgument(_unknown(key, target, known))
        split = not (skip is True or key in skip)
        try:
            value = _CONTAINER_VALUES.get(key, _same)(value, split)
        except InvalidArgument as err:
            raise InvalidArgument(f"{key}: {err}") from None
        except (TypeError, ValueError, AttributeError) as err:
            raise InvalidArgument(f"{key}: cannot read {value!r} ({err}); see docker_container's documentation "
                                  "for the forms it takes") from None
        if key == "restart_policy" and isinstance(value, tuple):
            value, retries = value
            if retries is not None:
                out["restart_retries"] = retries
        if target == "volumes" and target in out:  # docker-py's binds and volumes are both Docker -v items
            value = [*out[target], *value]
        out[target] = value
    if out.get("networks") == []:  # docker_container: `networks: []` starts the container without a network
        del out["networks"]
        out["network_mode"] = "none"
    elif "networks" in out and "purge_networks" in known:
        out.setdefault("purge_networks", True)  # docker_container: a network not listed is disconnected
    return out


def _canonical(given: Mapping[str, Any], ignore_collisions: bool) -> dict[str, Any]:
    """Salt's aliases to docker-py's names; an alias and its name both given is an error unless
    *ignore_collisions* (then the docker-py name wins), as in Salt."""
    out = {k: v for k, v in given.items() if k not in CONTAINER_ALIASES}
    for alias, name in CONTAINER_ALIASES.items():
        if alias not in given:
            continue
        if name in given:
            if not ignore_collisions:
                raise InvalidArgument(f"'{alias}' is an alias for '{name}', they cannot both be used (or set "
                                      f"ignore_collisions to True to keep the value of '{name}')")
            continue
        out[name] = given[alias]
    return out


def _unknown(key: str, target: str, known: Mapping[str, Any]) -> str:
    if key in CONTAINER_NAMES:  # a docker_container argument the planner has no row for
        return (f"{key}: docker_container's argument is not supported by the engine yet (intermodal.declare has "
                f"no {target}); leave it out")
    return (f"{key}: not an argument of intermodal_container; use docker_container's names "
            f"({', '.join(sorted(set(CONTAINER_NAMES) | set(CONTAINER_ALIASES)))}) or the planner's "
            f"({', '.join(sorted(set(known) - {'name', 'state', 'root'}))})")


def _same(value: Any, split: bool) -> Any:
    return value


def _split(value: Any, split: bool) -> list[str]:
    """A comma-separated string (unless not *split*), a scalar or a list, as a list of strings."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()] if split else [value]
    if isinstance(value, (int, float)):
        return [str(value)]
    return [str(v) for v in value]


def _pairs(value: Any, split: bool = True, *, bare: str | None = None) -> Any:
    """docker-py's mapping forms: a dict, "K=V,K2=V2", or a list of "K=V" / {K: V} items, as one dict.

    A bare "K" item takes the value *bare* (labels: ""); without *bare* it is left for the planner to refuse.
    """
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    out: dict[str, Any] = {}
    for item in _items(value, split):
        if isinstance(item, Mapping):
            out.update({str(k): v for k, v in item.items()})
            continue
        key, eq, val = str(item).partition("=")
        if not eq and bare is None:
            raise InvalidArgument(f"{item!r} is not KEY=VALUE")
        out[key] = val if eq else bare
    return out


def _items(value: Any, split: bool) -> list[Any]:
    if isinstance(value, str):
        return _split(value, split)
    return list(value)


def _labels(value: Any, split: bool) -> Any:
    return _pairs(value, split, bare="")


def _binds(value: Any, split: bool) -> Any:
    """docker-py binds: host:ctr[:mode] items, or {host: {"bind": ctr, "mode": "ro"}} / {host: "ctr:ro"}."""
    if not isinstance(value, Mapping):
        return _split(value, split)
    out = []
    for host, target in value.items():
        if isinstance(target, Mapping):
            mode = target.get("mode") or ("ro" if target.get("ro") else "")
            out.append(f"{host}:{target['bind']}" + (f":{mode}" if mode else ""))
        else:
            out.append(f"{host}:{target}")
    return out


def _port_bindings(value: Any, split: bool) -> list[str]:
    """`docker run -p` items ("8080:80", "127.0.0.1::53/udp", "80", ranges), comma-separated or a list; or
    docker-py's {container_port: host_port | (ip, port) | (ip,) | [several] | None}."""
    if not isinstance(value, Mapping):
        return _split(value, split)
    out = []
    for container_port, hosts in value.items():
        for host in hosts if isinstance(hosts, list) else [hosts]:
            if host is None:
                out.append(str(container_port))
            elif isinstance(host, (tuple, list)):
                ip, port = [*list(host), ""][:2]
                out.append(f"{ip}:{port or ''}:{container_port}")
            else:
                out.append(f"{host}:{container_port}")
    return out


def _restart_policy(value: Any, split: bool) -> Any:
    """"always", "on-failure:5" or docker-py's {"Name": ..., "MaximumRetryCount": N}: (policy, retries)."""
    if isinstance(value, Mapping):
        retries = value.get("MaximumRetryCount")
        return str(value.get("Name") or "no"), (int(retries) if retries else None)
    policy, _, retries = str(value).partition(":")
    return policy, (int(retries) if retries else None)


def _tmpfs(value: Any, split: bool) -> Any:
    """{path: options}, a list of {path: options} items, or path[:options] strings."""
    if isinstance(value, Mapping):
        value = [value]
    out = []
    for item in _items(value, split):
        if isinstance(item, Mapping):
            out += [f"{p}:{o}" if o else str(p) for p, o in item.items()]
        else:
            out.append(str(item))
    return out


def _extra_hosts(value: Any, split: bool) -> dict[str, str]:
    """"web1:10.9.8.7,web2:10.9.8.8", a list of host:ip items, or {host: ip}: community.docker's etc_hosts."""
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    out = {}
    for item in _items(value, split):
        if isinstance(item, Mapping):
            out.update({str(k): str(v) for k, v in item.items()})
            continue
        host, sep, ip = str(item).partition(":")
        if not sep:
            raise InvalidArgument(f"extra_hosts: {item!r} is not HOST:IP")
        out[host] = ip
    return out


def _strings(value: Any, split: bool) -> list[str]:
    return _split(value, split)


def _networks(value: Any, split: bool) -> Any:
    """Salt's networks: names, or {name: [{ipv4_address: ...}, {aliases: [...]}]} items, as planner dicts."""
    out = []
    for item in _split(value, split) if isinstance(value, str) else [value] if isinstance(value, Mapping) else value:
        if isinstance(item, str):
            out.append({"name": item})
            continue
        for net, config in item.items():
            settings = _pairs(config) if isinstance(config, list) else dict(config or {})
            unknown = sorted(set(settings) - {"ipv4_address", "aliases"})
            if unknown:
                raise InvalidArgument(f"networks: {net}: {', '.join(unknown)} not supported; give ipv4_address, "
                                      "aliases")
            if isinstance(settings.get("aliases"), str):
                settings["aliases"] = _split(settings["aliases"], True)
            out.append({"name": str(net), **settings})
    return out


def _env(value: Any, split: bool) -> Any:
    return _pairs(value, split)


def _flag(value: Any, split: bool) -> Any:
    return bool(value)


_CONTAINER_VALUES: dict[str, Callable[[Any, bool], Any]] = {
    "environment": _env, "labels": _labels, "log_opt": _pairs, "binds": _binds, "volumes": _strings,
    "port_bindings": _port_bindings, "ports": _strings, "cap_add": _strings, "cap_drop": _strings, "tmpfs": _tmpfs,
    "networks": _networks, "restart_policy": _restart_policy, "dns": _strings, "dns_search": _strings,
    "dns_opt": _strings, "extra_hosts": _extra_hosts, "force": _flag,
    "insecure_registry": lambda v, split: not v,
}


def image_options(name: str, kwargs: Mapping[str, Any], *, state: str = "present") -> dict[str, Any]:
    """docker_image arguments (build, load, force, tag, dockerfile, buildargs, insecure_registry) as the planner's."""
    from intermodal.declare.options import table

    o = {k: v for k, v in clean(kwargs).items() if v is not None and k not in IMAGE_IGNORED}
    out: dict[str, Any] = {"name": name, "state": state}
    if "sls" in o or "base" in o:
        raise InvalidArgument("sls and base (images built from Salt states) are not supported; use build or load")
    if sum(k in o for k in ("build", "load")) > 1:
        raise InvalidArgument("Only one of 'build' or 'load' is permitted.")
    if "build" in o:
        build = dict(o.pop("build")) if isinstance(o["build"], Mapping) else {"path": o.pop("build")}
        for salt_key, key in (("dockerfile", "dockerfile"), ("buildargs", "args"), ("nocache", "nocache")):
            if salt_key in o:
                build[key] = _pairs(o.pop(salt_key)) if key == "args" else o.pop(salt_key)
        if build.get("dockerfile") and build.get("path"):
            build["dockerfile"] = dockerfile_path(build["path"], build["dockerfile"])
        out.update(source="build", build=build)
    if "load" in o:
        out.update(source="load", load_path=o.pop("load"))
    if "force" in o:
        out["force_source" if state == "present" else "force_absent"] = bool(o.pop("force"))
    if "insecure_registry" in o:
        out["validate_certs"] = not o.pop("insecure_registry")
    known = set(table("image")) - {"name", "state", "root"}
    for key, value in o.items():
        if key not in known:
            raise InvalidArgument(f"{key}: not an argument of intermodal_image; use build, load, force, tag, "
                                  f"dockerfile, buildargs, insecure_registry or {', '.join(sorted(known))}")
        out[key] = value
    if state == "present":
        out.setdefault("source", "pull")
    return out


def dockerfile_path(context: str, dockerfile: str) -> str:
    """docker_image's dockerfile is relative to the build context (the engine's, like `-f`, to the cwd)."""
    import os

    return os.path.join(str(context), str(dockerfile))  # an absolute dockerfile stays as it is


NETWORK_ALIASES = {"driver_opt": "driver_opts", "options": "driver_opts", "ip_range": "iprange",
                   "ipv6": "enable_ipv6", "aux_address": "aux_addresses"}
# docker_network arguments with the only value the engine has: accepted when they say so.
NETWORK_DEFAULTS = {"attachable": False, "ingress": False, "scope": "local", "ipam_driver": "default"}
NETWORK_IGNORED = frozenset({"skip_translate", "ignore_collisions", "validate_ip_addrs", "check_duplicate",
                             "client_timeout"})


def network_options(name: str, kwargs: Mapping[str, Any], *, state: str = "present") -> dict[str, Any]:
    """docker_network arguments (driver_opts, subnet/gateway/iprange, ipam_pools, labels, internal, ...) as the
    planner's. The state handles `containers` and `reconnect` itself."""
    from intermodal.declare.options import table

    given = {k: v for k, v in clean(kwargs).items() if v is not None and k not in NETWORK_IGNORED}
    skip = skipped(clean(kwargs).get("skip_translate"))
    o = {NETWORK_ALIASES.get(k, k): v for k, v in given.items()}
    out: dict[str, Any] = {"name": name, "state": state}
    for key, only in NETWORK_DEFAULTS.items():
        if key in o and o.pop(key) != only:
            raise InvalidArgument(f"{key}: the engine's networks have {key} {only!r} only; leave it out")
    for key in ("ipam_opts", "aux_addresses", "ipam"):
        if key in o:
            raise InvalidArgument(f"{key}: not supported by the engine's IPAM; give subnet, gateway, iprange")
    if "driver_opts" in o:
        out["driver_options"] = _pairs(o.pop("driver_opts"), not (skip is True or "driver_opts" in skip))
    pool = {k: o.pop(k) for k in ("subnet", "gateway", "iprange") if k in o}
    if pool:
        out["ipam_config"] = [pool]
    if "ipam_pools" in o:
        if pool:
            raise InvalidArgument("give ipam_pools or subnet/gateway/iprange, not both")
        out["ipam_config"] = [{NETWORK_ALIASES.get(k, k): v for k, v in p.items()} for p in o.pop("ipam_pools")]
    known = set(table("network")) - {"name", "state", "root", "connected", "appends"}
    for key, value in o.items():
        if key not in known:
            raise InvalidArgument(f"{key}: not an argument of intermodal_network; use docker_network's driver, "
                                  "driver_opts, subnet, gateway, iprange, ipam_pools, internal, labels, containers, "
                                  f"reconnect or the planner's {', '.join(sorted(known))}")
        out[key] = _labels(value, not (skip is True or key in skip)) if key == "labels" else value
    return out


def volume_options(name: str, kwargs: Mapping[str, Any], *, state: str = "present") -> dict[str, Any]:
    """docker_volume arguments (driver, driver_opts, labels, force) as the planner's; force may recreate."""
    o = {k: v for k, v in clean(kwargs).items() if v is not None}
    out: dict[str, Any] = {"name": name, "state": state}
    if "driver_opts" in o:
        out["driver_options"] = o.pop("driver_opts")
    if o.pop("force", False):
        out["recreate"] = "options-changed"  # Salt: force recreates a volume whose driver differs
    for key in ("driver", "labels", "recreate", "driver_options"):
        if key in o:
            out[key] = _labels(o.pop(key), True) if key in ("labels", "driver_options") else o.pop(key)
    if o:
        raise InvalidArgument(f"{', '.join(sorted(o))}: not an argument of intermodal_volume; use driver, "
                              "driver_opts, labels, force")
    return out


# -- a plan as a state return -------------------------------------------------------------------------------

WORDS = {"pull": "pulled", "load": "loaded", "import": "imported", "build": "built", "create": "created",
         "start": "started", "recreate": "replaced", "stop": "stopped", "restart": "restarted",
         "update": "updated in place", "remove": "removed", "tag": "tagged", "save": "saved", "push": "pushed",
         "connect": "connected", "disconnect": "disconnected"}


def describe(actions: Iterable[str]) -> str:
    """("create", "start") -> "created, started"; ("tag:x",) -> "tagged x"."""
    words = []
    for action in actions:
        kind, _, arg = action.partition(":")
        words.append(WORDS.get(kind, kind) + (f" {arg}" if arg else ""))
    return ", ".join(words)


def changes(plan: Plan) -> dict[str, Any]:
    """Each differing option as {"old": engine's, "new": declared} (Salt's changes)."""
    before, after = plan.before_after()
    return {key: {"old": before[key], "new": after[key]} for key in before}


def state_return(name: str, kind: str, plan: Plan, *, test: bool, changed: bool | None = None,
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The return of a state that ran *plan* (or, with *test*, would run it).

    `changes` is empty when nothing moved (a pull that gave the same id); `plan`
    carries the planner's actions and differences for callers that compare
    front ends.
    """
    moved = plan.changed if changed is None else changed
    what = f"{kind} '{name}'"
    if not plan.changed:
        comment = f"{what} is already in the declared state."
    elif test:
        comment = f"{what} would be {describe(plan.actions)}."
    elif moved:
        comment = f"{what} was {describe(plan.actions)}."
    else:
        comment = f"{what} was {describe(plan.actions)}, but nothing changed."
    ret: dict[str, Any] = {"name": name, "result": None if test and plan.changed else True,
                           "changes": {**changes(plan), **(extra or {})} if moved else {}, "comment": comment,
                           "plan": plan.to_data()}
    if plan.warnings:
        ret["warnings"] = list(plan.warnings)
    return ret


def failure(name: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "result": False, "changes": {}, "comment": message, **extra}


# -- one-shot containers and exec ---------------------------------------------------------------------------------


def run_container(engine: Engine, spec_and_pull: tuple[Any, Mapping[str, Any]], *, bg: bool = False,
                  timeout: float | None = None) -> dict[str, Any]:
    """Create and start; unless *bg*, wait (bounded by *timeout*) and return ExitCode and Logs too."""
    spec, pull_options = spec_and_pull
    container, _ = engine.containers.run(spec, pull_options=dict(pull_options))
    result: dict[str, Any] = {"Id": container.id, "Name": container.name}
    if bg:
        return result
    result["ExitCode"] = engine.containers.wait(container.id, timeout=timeout)
    if not spec.auto_remove:  # an auto-removed container took its log with it
        result["Logs"] = "".join(r.get("log", "") for r in engine.containers.logs(container.id))
    return result


def exec_in(engine: Engine, name: str, cmd: Any, *, env: Any = None, workdir: str | None = None,
            user: str | None = None, timeout: float | None = None) -> dict[str, Any]:
    """`imod exec` in a subprocess (the engine's exec uses the caller's stdio): retcode, stdout, stderr."""
    import os
    import shutil
    import subprocess
    import sys

    from intermodal.declare import normalise

    argv = list(normalise.command(cmd) or ())
    if not argv:
        raise InvalidArgument("the command is empty: give cmd")
    engine.containers.get(name)  # ContainerNotFound with the engine's message
    imod = os.path.join(os.path.dirname(sys.executable), "imod")
    imod = imod if os.path.exists(imod) else shutil.which("imod") or "imod"
    command = [imod, "--root", str(engine.paths.root), "exec"]
    if workdir:
        command += ["-w", workdir]
    if user:
        command += ["-u", str(user)]
    for key, value in normalise.string_map(_pairs(env), "env").items():
        command += ["-e", f"{key}={value}"]
    try:
        proc = subprocess.run([*command, name, *argv], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=RUN_WAIT if timeout is None else timeout)
    except subprocess.TimeoutExpired as err:
        from intermodal.errors import RuntimeFailure

        raise RuntimeFailure(f"{' '.join(argv)} in container {name} did not finish within {err.timeout:g}s; "
                             "give a larger timeout, or run it in the background") from None
    return {"retcode": proc.returncode, "stdout": proc.stdout.rstrip("\n"), "stderr": proc.stderr.rstrip("\n")}
