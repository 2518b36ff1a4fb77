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

# Salt docker name -> community.docker name (the planner's).
CONTAINER_NAMES = {
    "cmd": "command", "environment": "env", "binds": "volumes", "port_bindings": "published_ports",
    "cap_add": "capabilities", "mem_limit": "memory", "log_opt": "log_options", "stdin_open": "interactive",
    "force": "recreate", "insecure_registry": "validate_certs",
}
# Accepted for portability and not managed (Docker client settings).
CONTAINER_IGNORED = frozenset({"skip_translate", "ignore_collisions", "validate_ip_addrs", "client_timeout",
                               "shutdown_timeout", "watch_action", "skip_comparison", "failhard"})
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


def container_options(name: str, kwargs: Mapping[str, Any], *, state: str = "started") -> dict[str, Any]:
    """docker_container arguments as the planner's container options. Raises InvalidArgument."""
    from intermodal.declare.options import table

    known = table("container")
    out: dict[str, Any] = {"name": name, "state": state}
    for key, value in clean(kwargs).items():
        if key in CONTAINER_IGNORED or value is None:
            continue
        target = CONTAINER_NAMES.get(key, key)
        if target not in known or target in ("name", "state", "root"):
            raise InvalidArgument(f"{key}: not an argument of intermodal_container; use docker_container's names "
                                  f"({', '.join(sorted(CONTAINER_NAMES))}) or the planner's "
                                  f"({', '.join(sorted(set(known) - {'name', 'state', 'root'}))})")
        if key == "insecure_registry":
            value = not value
        elif key == "force":
            value = bool(value)
        value = _CONTAINER_VALUES.get(target, _same)(value)
        if target == "volumes" and target in out:  # docker-py's binds and volumes are both Docker -v items
            value = [*out[target], *value]
        out[target] = value
    return out


def _same(value: Any) -> Any:
    return value


def _pairs(value: Any) -> Any:
    """docker-py's list forms: ["K=V", ...] or [{"K": "V"}, ...] (Salt's YAML) to one dict."""
    if isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
        return {str(k): v for item in value for k, v in item.items()}
    return value


def _binds(value: Any) -> Any:
    """docker-py binds: a list of host:ctr[:mode], or {host: {"bind": ctr, "mode": "ro"}} / {host: "ctr:ro"}."""
    if not isinstance(value, Mapping):
        return [str(v) for v in ([value] if isinstance(value, str) else value)]
    out = []
    for host, target in value.items():
        if isinstance(target, Mapping):
            mode = target.get("mode") or ("ro" if target.get("ro") else "")
            out.append(f"{host}:{target['bind']}" + (f":{mode}" if mode else ""))
        else:
            out.append(f"{host}:{target}")
    return out


def _strings(value: Any) -> Any:
    """A comma-separated string or a list, as a list of strings (Salt accepts both)."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, Mapping):  # port_bindings as {container_port: host_port}
        return [f"{h}:{c}" for c, h in value.items()]
    return [str(v) for v in value]


def _tmpfs(value: Any) -> Any:
    """{path: options} or a list of path[:options]."""
    if isinstance(value, Mapping):
        return [f"{p}:{o}" if o else str(p) for p, o in value.items()]
    return _strings(value)


def _networks(value: Any) -> Any:
    """Salt's networks: names, or {name: [{ipv4_address: ...}, {aliases: [...]}]} items, as planner dicts."""
    out = []
    for item in [value] if isinstance(value, (str, Mapping)) else value:
        if isinstance(item, str):
            out.append({"name": item})
            continue
        for net, config in item.items():
            settings = _pairs(config) if isinstance(config, list) else dict(config or {})
            unknown = sorted(set(settings) - {"ipv4_address", "aliases"})
            if unknown:
                raise InvalidArgument(f"networks: {net}: {', '.join(unknown)} not supported; give ipv4_address, "
                                      "aliases")
            out.append({"name": str(net), **settings})
    return out


_CONTAINER_VALUES: dict[str, Callable[[Any], Any]] = {
    "env": _pairs, "labels": _pairs, "log_options": _pairs, "volumes": _binds, "published_ports": _strings,
    "capabilities": _strings, "cap_drop": _strings, "tmpfs": _tmpfs, "networks": _networks,
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


def network_options(name: str, kwargs: Mapping[str, Any], *, state: str = "present") -> dict[str, Any]:
    """docker_network arguments (driver_opts, subnet/gateway/iprange, ipam_pools, containers) as the planner's."""
    from intermodal.declare.options import table

    o = {k: v for k, v in clean(kwargs).items() if v is not None}
    out: dict[str, Any] = {"name": name, "state": state}
    if "driver_opts" in o:
        out["driver_options"] = _pairs(o.pop("driver_opts"))
    pool = {k: o.pop(k) for k in ("subnet", "gateway", "iprange") if k in o}
    if pool:
        out["ipam_config"] = [pool]
    if "ipam_pools" in o:
        if pool:
            raise InvalidArgument("give ipam_pools or subnet/gateway/iprange, not both")
        out["ipam_config"] = [dict(p) for p in o.pop("ipam_pools")]
    if "containers" in o:
        out["connected"] = _strings(o.pop("containers"))
    known = set(table("network")) - {"name", "state", "root"}
    for key, value in o.items():
        if key not in known:
            raise InvalidArgument(f"{key}: not an argument of intermodal_network; use driver_opts, subnet, gateway, "
                                  f"iprange, ipam_pools, containers or {', '.join(sorted(known))}")
        out[key] = _pairs(value) if key == "labels" else value
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
            out[key] = _pairs(o.pop(key))
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
    proc = subprocess.run([*command, name, *argv], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=timeout)
    return {"retcode": proc.returncode, "stdout": proc.stdout.rstrip("\n"), "stderr": proc.stderr.rstrip("\n")}
