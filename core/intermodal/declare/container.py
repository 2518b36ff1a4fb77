"""Containers: a declaration against the container's stored, normalised spec.

The engine stores each container's `ContainerSpec` as the user gave it (None
for what the image supplies). Both sides are filled from their image the
same way before comparing, so an image-supplied value is never drift, a value
equal to the image's is no change, and an option dropped from the
declaration is a change back to the default.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from intermodal.containers.spec import ContainerSpec
from intermodal.declare import normalise as norm
from intermodal.declare.compare import equal
from intermodal.declare.options import UPDATE, change_kind, comparison_modes
from intermodal.declare.plan import Difference, Plan
from intermodal.errors import ContainerNotFound, ImageNotFound, IntermodalError, InvalidArgument
from intermodal.records import fields

if TYPE_CHECKING:
    from intermodal.engine import Engine

DEFAULT_STOP_TIMEOUT = 10
SPEC_FIELDS = frozenset(fields(ContainerSpec))
STATES = ("absent", "present", "stopped", "started", "healthy")
HEALTH_POLL = 0.2
REMOVED_WAIT = 10.0  # seconds an auto_remove container's monitor gets to finish removing it
UNKNOWN = "unknown"
LIVE = ("running", "paused", "restarting")


@dataclass(frozen=True)
class Declared:
    """A normalised declaration; *spec* is None for state=absent."""

    name: str
    state: str
    spec: ContainerSpec | None = None
    pull: str = "missing"
    recreate: bool = False
    restart: bool = False
    modes: Mapping[str, str] = field(default_factory=dict)
    pull_options: Mapping[str, Any] = field(default_factory=dict)
    keep_volumes: bool = True  # anonymous volumes outlive a removed container, as with Docker's `rm` without -v
    wait_healthy: bool = False  # state=healthy: started, then its healthcheck must pass
    healthy_wait_timeout: float = 300.0
    detach: bool = True  # false: a start waits for the container to exit (`run_to_end`)
    cleanup: bool = False  # with detach false: removed once it exited
    image_name_mismatch: str = "ignore"  # recreate: the same image id under another name recreates


@dataclass(frozen=True)
class Current:
    """What the engine has for the name: the stored spec, the image it runs, its status."""

    id: str
    spec: ContainerSpec
    image_id: str
    image_config: Mapping[str, Any]
    status: str
    # The networks it is configured for now, first first, as (name, ip, aliases): `network connect` and
    # `disconnect` change them after create. None: as the spec says.
    networks: tuple[tuple[str, str | None, tuple[str, ...]], ...] | None = None


# -- declaration ---------------------------------------------------------------------------------


def declare(options: Mapping[str, Any]) -> Declared:
    """Options as the front ends name them (community.docker's) to a `Declared`. Raises InvalidArgument."""
    from intermodal.containers.spec import parse_env, read_env_file

    o = {k: v for k, v in options.items() if v is not None}
    name = o.get("name")
    if not name:
        raise InvalidArgument("name is required: give the container's name")
    state = o.get("state", "started")
    if state not in STATES:
        raise InvalidArgument(f"state {state!r}: use one of {', '.join(STATES)}")
    comparisons = dict(o.get("comparisons") or {})
    if o.get("purge_networks"):  # community.docker's older spelling of comparisons networks: strict
        comparisons.setdefault("networks", "strict")
    modes = comparison_modes("container", comparisons)
    common = {"name": name, "state": "started" if state == "healthy" else state, "modes": modes,
              "wait_healthy": state == "healthy", "healthy_wait_timeout": float(o.get("healthy_wait_timeout", 300)),
              "pull": o.get("pull", "missing"), "recreate": bool(o.get("recreate")), "restart": bool(o.get("restart")),
              "keep_volumes": bool(o.get("keep_volumes", True)), "detach": bool(o.get("detach", True)),
              "cleanup": bool(o.get("cleanup", False)),
              "image_name_mismatch": o.get("image_name_mismatch", "ignore")}
    if common["image_name_mismatch"] not in ("ignore", "recreate"):
        raise InvalidArgument(f"image_name_mismatch {common['image_name_mismatch']!r}: use ignore or recreate")
    if state == "absent":
        return Declared(**common)
    if not o.get("image"):
        raise InvalidArgument(f"image is required for state={state}: name the image to run")
    if o.get("published_ports") and "ports" not in SPEC_FIELDS:
        raise InvalidArgument("published_ports: this engine cannot publish container ports yet (it needs bridge "
                              "networking for containers); leave the option out or use network_mode: host")
    if o.get("log_driver") not in (None, "json-file", "local"):
        raise InvalidArgument(f"log_driver {o['log_driver']!r} is not available; the engine keeps json-file logs")
    fields: dict[str, Any] = {}
    env: dict[str, str] = {}
    if "env_file" in o:
        env.update(dict(parse_env(read_env_file(o["env_file"]))))
    if "env" in o:
        env.update(norm.string_map(o["env"], "env", strict_bools=True))
    if env or "env" in o or "env_file" in o:
        fields["env"] = env
    if "command" in o:
        fields["command"] = norm.command(o["command"])
    if "entrypoint" in o:
        fields["entrypoint"] = norm.entrypoint(o["entrypoint"])
    if "labels" in o:
        fields["labels"] = norm.string_map(o["labels"], "labels")
    mounts = norm.mounts(o.get("volumes"), o.get("mounts"), o.get("tmpfs"))
    if mounts is not None:
        fields["mounts"] = mounts
    policy = norm.restart(o.get("restart_policy"), o.get("restart_retries"))
    if policy is not None:
        fields["restart"] = policy
    if "healthcheck" in o:
        fields["healthcheck"] = norm.healthcheck(o["healthcheck"])
    fields.update(norm.log_options(o.get("log_options")))
    fields.update(_network(o))
    plain = {"working_dir": "workdir", "user": "user", "hostname": "hostname",
             "stop_signal": "stop_signal", "stop_timeout": "stop_timeout", "auto_remove": "auto_remove",
             "interactive": "interactive", "tty": "tty", "read_only": "read_only", "privileged": "privileged",
             "capabilities": "cap_add", "cap_drop": "cap_drop", "memory": "memory", "cpus": "cpus",
             "pids_limit": "pids_limit", "init": "init", "devices": "devices",
             "device_cgroup_rules": "device_cgroup_rules", "dns_servers": "dns",
             "dns_search_domains": "dns_search", "dns_opts": "dns_options", "etc_hosts": "extra_hosts"}
    if "devices" in o and "devices" not in SPEC_FIELDS:
        raise InvalidArgument("devices: this engine cannot give containers host devices yet; leave it out")
    fields.update({plain[k]: v for k, v in o.items() if k in plain})
    spec = ContainerSpec.build(str(o["image"]), name=name, **fields)
    return Declared(spec=spec, pull_options={"tls_verify": bool(o.get("validate_certs", True))}, **common)


def _network(o: Mapping[str, Any]) -> dict[str, Any]:
    """network_mode, networks, published_ports and exposed ports as the spec's network, ip,
    network_aliases, extra_networks, ports, expose and publish_all.

    As community.docker's docker_container with networks_cli_compatible (the default): without
    network_mode the first of `networks` is the container's network (no default bridge besides);
    with networks_cli_compatible false the container is on network_mode's network (default: bridge)
    and `networks` are further ones.
    """
    out: dict[str, Any] = {}
    mode = o.get("network_mode")
    if mode is not None:
        out["network"] = "bridge" if mode == "default" else str(mode)  # Docker: default is bridge
    networks = [_network_item(n) for n in o.get("networks") or ()]
    if networks:
        if "ip" not in SPEC_FIELDS:
            raise InvalidArgument("networks: this engine cannot join containers to networks yet; use network_mode "
                                  "none or host")
        names = [n["name"] for n in networks]
        if len(set(names)) != len(names):
            raise InvalidArgument(f"networks: {', '.join(names)} lists a network twice; give each once")
        if "network" not in out:
            out["network"] = names[0] if o.get("networks_cli_compatible", True) else "bridge"
        extra = []
        for n in networks:
            if n["name"] == out["network"]:
                if n["ip"]:
                    out["ip"] = n["ip"]
                if n["aliases"]:
                    out["network_aliases"] = n["aliases"]
            else:
                extra.append(n)
        if extra:
            if "extra_networks" not in SPEC_FIELDS:
                raise InvalidArgument("networks: the engine joins a container to one network so far; give one")
            from intermodal.containers.spec import NetworkAttachment

            out["extra_networks"] = tuple(NetworkAttachment(n["name"], n["aliases"], n["ip"]) for n in extra)
    if o.get("published_ports"):
        items = [str(p) for p in o["published_ports"]]
        if "all" in items:  # community.docker: published_ports: [all] publishes every exposed port
            items.remove("all")
            out["publish_all"] = True
        if items:
            out["ports"] = tuple(items)
    if o.get("publish_all_ports"):
        out["publish_all"] = True
    if o.get("exposed_ports"):
        out["expose"] = tuple(norm.exposed(o["exposed_ports"]))
    for key in ("publish_all", "expose"):
        if key in out and key not in SPEC_FIELDS:
            raise InvalidArgument(f"{'exposed_ports' if key == 'expose' else 'publish_all_ports'}: this engine "
                                  "cannot do that yet; leave it out")
    return out


def _network_item(item: Any) -> dict[str, Any]:
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, Mapping) or not item.get("name"):
        raise InvalidArgument(f"networks: {item!r} needs a name (name, ipv4_address, aliases)")
    unknown = sorted(k for k, v in item.items() if v is not None and k not in ("name", "ipv4_address", "aliases"))
    if unknown:
        raise InvalidArgument(f"networks: {', '.join(unknown)} not supported; give name, ipv4_address, aliases")
    return {"name": str(item["name"]), "ip": norm.ip(item["ipv4_address"]) if item.get("ipv4_address") else None,
            "aliases": tuple(str(a) for a in item.get("aliases") or ())}


# -- both sides -------------------------------------------------------------------------------------


def expected(spec: ContainerSpec, image_config: Mapping[str, Any]) -> dict[str, Any]:
    """Every compared field's value in force: the spec's, else the image's, else the engine default."""
    from intermodal.containers import config as oci

    img = oci.image_section(dict(image_config))
    if spec.command is not None:
        command = spec.command
    elif spec.entrypoint is not None:
        command = ()  # Docker: a new ENTRYPOINT drops the image's CMD
    else:
        command = tuple(img.get("Cmd") or ())
    env = dict(e.partition("=")[::2] for e in oci.merge_env(img.get("Env") or [], spec.env, "", False))
    env.pop("HOSTNAME", None)  # the engine sets it per container
    restart = spec.restart
    return {
        "command": tuple(command),
        "entrypoint": tuple(spec.entrypoint if spec.entrypoint is not None else img.get("Entrypoint") or ()),
        "env": env,
        "workdir": posixpath.normpath(spec.workdir or img.get("WorkingDir") or "/"),
        "user": spec.user if spec.user is not None else img.get("User") or "",
        "hostname": spec.hostname,
        "labels": {**(img.get("Labels") or {}), **dict(spec.labels)},
        "mounts": norm.mount_set(spec.mounts),
        **network_values(spec_networks(spec)),
        "expose": frozenset(norm.exposed(getattr(spec, "expose", ()))),
        "publish_all": getattr(spec, "publish_all", False),
        "devices": frozenset(getattr(spec, "devices", ())),  # HOST:CONTAINER:PERMS, defaults filled in
        # allow rules only (the defaults deny the rest), so their order does not matter
        "device_cgroup_rules": frozenset(getattr(spec, "device_cgroup_rules", ())),
        # The requests as declared, as sets: a random or ranged host port is the same request every run.
        "ports": norm.ports(getattr(spec, "ports", ())),
        "restart": {"Name": restart.name,
                    "MaximumRetryCount": restart.max_retries if restart.name == "on-failure" else 0},
        "stop_signal": oci.stop_signal(spec, dict(image_config)),
        "stop_timeout": DEFAULT_STOP_TIMEOUT if spec.stop_timeout is None else spec.stop_timeout,
        "auto_remove": spec.auto_remove,
        "interactive": spec.interactive,
        "tty": spec.tty,
        "read_only": spec.read_only,
        "privileged": spec.privileged,
        "cap_add": frozenset(spec.cap_add),
        "cap_drop": frozenset(spec.cap_drop),
        "memory": spec.memory,
        "cpus": spec.cpus,
        "pids_limit": spec.pids_limit,
        "log": {"max-size": spec.log_max_size, "max-file": spec.log_max_file},
        "healthcheck": oci.resolve_healthcheck(spec, dict(image_config)),
        "init": spec.init,
        # resolvers and search domains are tried in order; options and hosts are sets ("HOST:IP", as Docker's
        # ExtraHosts: a host may have an IPv4 and an IPv6 entry)
        "dns": tuple(getattr(spec, "dns", ())),
        "dns_search": tuple(getattr(spec, "dns_search", ())),
        "dns_options": frozenset(getattr(spec, "dns_options", ())),
        "extra_hosts": frozenset(getattr(spec, "extra_hosts", ())),
    }


def actual(current: Current, image_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The stored spec filled from *image_config* (default: the image the container runs), exactly as
    `expected` fills a declaration; its networks as they are configured now."""
    values = expected(current.spec, current.image_config if image_config is None else image_config)
    if current.networks is not None:
        values.update(network_values(current.networks))
    return values


def spec_networks(spec: ContainerSpec) -> tuple[tuple[str, str | None, tuple[str, ...]], ...]:
    """The spec's networks, first (the network mode) first, as (name, ip, aliases)."""
    first = (spec.network, getattr(spec, "ip", None), tuple(getattr(spec, "network_aliases", ())))
    return (first, *((n.name, n.ip, tuple(n.aliases)) for n in getattr(spec, "extra_networks", ())))


def network_values(networks: tuple[tuple[str, str | None, tuple[str, ...]], ...]) -> dict[str, Any]:
    """"network": the first (changing it recreates); "networks": the others by name (connected and
    disconnected in place where the engine can)."""
    def endpoint(ip: str | None, aliases: tuple[str, ...]) -> dict[str, Any]:
        return {"ip": norm.ip(ip) if ip else None, "aliases": frozenset(aliases)}

    (name, ip, aliases), *others = networks
    return {"network": {"name": name, **endpoint(ip, aliases)},
            "networks": {n: endpoint(i, a) for n, i, a in others}}


def compare(declared: Mapping[str, Any], current: Mapping[str, Any], modes: Mapping[str, str]
            ) -> list[Difference]:
    return [Difference(name, declared[name], current.get(name)) for name in declared
            if not equal(declared[name], current.get(name), modes.get(name, "strict"))]


# -- plan -----------------------------------------------------------------------------------------------


def plan(declared: Declared, current: Current | None, *, image_id: str | None = None,
         image_config: Mapping[str, Any] | None = None, remote_id: str | None = None,
         can_update: bool = False, can_connect: bool = False) -> Plan:
    """The actions that bring *current* to *declared*. Pure: *image_id*/*image_config* are the declared
    image as the store has it now (None: not present locally, so it would be pulled); *remote_id* is
    the id the registry names for it (pull=always; "unknown" when it could not be asked); *can_update*
    and *can_connect*: the engine updates resources and connects networks in place."""
    if declared.state == "absent":
        return Plan(("remove",), (Difference("state", "absent", current.status),)) if current else Plan()
    assert declared.spec is not None
    actions: list[str] = []
    warnings: list[str] = []
    if image_id is None and declared.pull == "never":
        raise ImageNotFound(f"image {declared.spec.image} is not present and pull is never; pull or load it first")
    # pull=always pulls only when the registry names another image: a pull that moves nothing is no change.
    if image_id is None or (declared.pull == "always" and remote_id != image_id):
        actions.append("pull")
        if image_id is not None and remote_id in (None, UNKNOWN):
            warnings.append(f"the registry could not tell the id of {declared.spec.image}; it is pulled, and the "
                            "container is recreated only if the id moves")
        elif image_id is not None:
            image_id = None  # the image will move: compare as if it were not here
    if current is None:
        actions.append("create")
        if declared.state == "started":
            actions.append("start")
        return Plan(tuple(actions), (Difference("state", declared.state, "absent"),), tuple(warnings))
    differences: list[Difference] = []
    if image_id is None:
        differences.append(Difference("image", declared.spec.image, current.image_id))
    else:
        if image_id != current.image_id and declared.modes.get("image", "strict") != "ignore":
            differences.append(Difference("image", image_id, current.image_id))
        elif declared.image_name_mismatch == "recreate" and _image_name(declared.spec.image) != _image_name(
                current.spec.image):
            differences.append(Difference("image_name", _image_name(declared.spec.image),
                                          _image_name(current.spec.image)))
        # Both sides filled from the declared image: what a new image brings is the image's difference,
        # not one of each option it supplies (labels, env, ...); the image's alone recreates.
        config = image_config or {}
        differences += compare(expected(declared.spec, config), actual(current, config), declared.modes)
    in_place = _in_place(differences, can_update, can_connect, purge=declared.modes.get("networks") == "strict")
    running = current.status in LIVE
    if declared.recreate or in_place is None:
        actions.append("recreate")
        if declared.state == "started" or (declared.state == "present" and running):
            actions.append("start")
    else:
        actions += in_place
        if declared.state == "started" and not running:
            actions.append("start")
        elif declared.state == "stopped" and running:
            actions.append("stop")
        elif declared.restart and running and declared.state != "stopped":
            actions.append("restart")
    return Plan(tuple(actions), tuple(differences), tuple(warnings),
                data={"image_id": image_id, "can_update": can_update})


def _image_name(reference: str) -> str:
    """A reference in its full form (busybox: docker.io/library/busybox:latest); an id as it is."""
    from intermodal.images import reference as refs

    try:
        return reference if refs.looks_like_id(reference) else str(refs.parse(reference))
    except IntermodalError:
        return reference


def _in_place(differences: list[Difference], can_update: bool, can_connect: bool, *, purge: bool
              ) -> list[str] | None:
    """The in-place actions for *differences*: "update" (resources, restart policy), then
    "disconnect:NET" and "connect:NET" for the further networks (networks not declared go only with
    *purge*); None when a recreate is needed."""
    actions: list[str] = []
    for d in differences:
        if change_kind("container", d.name) != UPDATE:
            return None
        if d.name == "networks":
            if not can_connect:
                return None
            want, have = d.declared, d.actual or {}
            # A changed address or aliases: off and on again (as `docker network disconnect/connect`).
            actions += [f"disconnect:{n}" for n in sorted(have) if n in want and want[n] != have[n]]
            actions += [f"disconnect:{n}" for n in sorted(have) if n not in want and purge]
            actions += [f"connect:{n}" for n in want if have.get(n) != want[n]]
        elif not can_update:
            return None
        elif "update" not in actions:
            actions.insert(0, "update")
    return actions


def named(engine: Engine, name: str) -> Any:
    """The container called *name*, or None. Not the engine's lookup alone (a name, else an id prefix):
    a declared name that is also hex, such as c8, must not find the container whose id starts with c8."""
    if not engine.containers.exists(name):
        return None
    c = engine.containers.get(name)
    return c if c.name == name else None


def read(engine: Engine, declared: Declared) -> tuple[Current | None, str | None, dict[str, Any] | None]:
    """What the plan needs from the engine: the current container and the declared image (no changes made)."""
    current = None
    c = named(engine, declared.name)
    if c is not None:
        try:
            config = engine.images.config(c.record["Image"])
        except ImageNotFound:
            config = {}
        current = Current(c.id, c.spec, c.record["Image"], config, c.status, _configured_networks(engine, c))
    image_id = image_config = None
    if declared.spec is not None:
        try:
            record = engine.images.get(declared.spec.image)
            image_id, image_config = record.id, engine.images.config(record)
        except ImageNotFound:
            pass
    return current, image_id, image_config


def _configured_networks(engine: Engine, c: Any) -> tuple[tuple[str, str | None, tuple[str, ...]], ...] | None:
    """The networks `network connect/disconnect` left configured (by name), or None where the engine
    keeps them in the spec alone."""
    from intermodal.containers import net
    from intermodal.errors import NetworkNotFound

    if not hasattr(net, "requests"):
        return None
    out = []
    for r in net.requests(c.record, c.spec):
        name = r.network
        if name not in ("none", "host", "bridge") and not name.startswith("container:"):
            try:
                name = engine.networks.get(name).name  # an id where it was connected by id
            except NetworkNotFound:
                pass
        out.append((name, r.ip, tuple(r.aliases)))
    return tuple(out)


def _abilities(engine: Engine) -> dict[str, bool]:
    return {"can_update": hasattr(engine.containers, "update"), "can_connect": hasattr(engine.containers, "connect")}


def make_plan(engine: Engine, declared: Declared) -> Plan:
    current, image_id, image_config = read(engine, declared)
    remote_id = None
    if declared.pull == "always" and declared.spec is not None and image_id is not None:
        from intermodal.declare.image import remote_image_id

        try:
            remote_id = remote_image_id(declared.spec.image, **_remote_options(declared.pull_options))
        except IntermodalError:
            remote_id = UNKNOWN  # the pull itself reports the registry's error
    return plan(declared, current, image_id=image_id, image_config=image_config, remote_id=remote_id,
                **_abilities(engine))


def _remote_options(options: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k in ("tls_verify", "platform")}


def apply(engine: Engine, declared: Declared, the_plan: Plan) -> tuple[bool, Plan]:
    """Run *the_plan*; returns (changed, the plan that ran). A pull comes first and the rest is re-planned
    against the pulled image, so a pull that moved nothing changes nothing."""
    if "pull" in the_plan.actions:
        assert declared.spec is not None
        before = _local_id(engine, declared.spec.image)
        engine.images.pull(declared.spec.image, **dict(declared.pull_options))
        current, image_id, image_config = read(engine, declared)
        rest = plan(declared, current, image_id=image_id, image_config=image_config, remote_id=image_id,
                    **_abilities(engine))
        _run(engine, declared, rest)
        moved = before != image_id
        ran = Plan((("pull",) if moved else ()) + rest.actions, rest.differences, the_plan.warnings, rest.data)
        return ran.changed, ran
    _run(engine, declared, the_plan)
    return the_plan.changed, the_plan


def _local_id(engine: Engine, name: str) -> str | None:
    try:
        return engine.images.get(name).id
    except ImageNotFound:
        return None


def _run(engine: Engine, declared: Declared, the_plan: Plan) -> None:
    containers = engine.containers
    for action in the_plan.actions:
        if action in ("remove", "recreate"):
            _remove(engine, declared)
        if action in ("create", "recreate"):
            assert declared.spec is not None
            containers.create(declared.spec, pull="never")
        elif action == "start":
            containers.start(declared.name)
        elif action == "stop":
            containers.stop(declared.name)
        elif action == "restart":
            containers.restart(declared.name)
        elif action == "update":
            assert declared.spec is not None
            changed = {d.name for d in the_plan.differences} - {"networks"}
            containers.update(declared.name, **{f: getattr(declared.spec, f) for f in changed})
        elif action.startswith("disconnect:"):
            containers.disconnect(declared.name, action.partition(":")[2], force=True)
        elif action.startswith("connect:"):
            assert declared.spec is not None
            name = action.partition(":")[2]
            ip, aliases = next((n[1], n[2]) for n in spec_networks(declared.spec) if n[0] == name)
            containers.connect(declared.name, name, aliases=aliases, ipv4_address=ip)


def _remove(engine: Engine, declared: Declared) -> None:
    """Remove by force. A live auto_remove container is killed and its monitor left to remove it:
    `remove` racing the monitor would find it gone half-way (and leave its lock file behind)."""
    containers = engine.containers
    try:
        c = containers.get(declared.name)
        if c.spec.auto_remove and c.status in LIVE:
            containers.kill(declared.name)
            _wait_removed(engine, declared.name)
        if containers.exists(declared.name):
            containers.remove(declared.name, force=True, volumes=not declared.keep_volumes)
    except ContainerNotFound:
        _wait_removed(engine, declared.name)  # the monitor removed it meanwhile: the same end


def _wait_removed(engine: Engine, name: str) -> None:
    """Until the monitor's removal freed the name (bounded: that takes well under a second)."""
    import time

    deadline = time.monotonic() + REMOVED_WAIT
    while engine.containers.exists(name) and time.monotonic() < deadline:
        time.sleep(HEALTH_POLL)


def run_to_end(engine: Engine, declared: Declared) -> tuple[int, str]:
    """detach false: wait for the started container to exit; (its exit code, its output as logged).
    With cleanup it is removed then."""
    code = engine.containers.wait(declared.name)
    output = "".join(str(r.get("log", "")) for r in engine.containers.logs(declared.name))
    if declared.cleanup and engine.containers.exists(declared.name):
        _remove(engine, declared)
    return code, output


def wait_healthy(engine: Engine, declared: Declared) -> str:
    """After a run with state=healthy: wait until the healthcheck passes; returns the last health status.

    Waiting is not a change. Raises RuntimeFailure when the container stops, turns unhealthy, or is
    still starting after healthy_wait_timeout seconds.
    """
    import time

    from intermodal.errors import RuntimeFailure

    deadline = time.monotonic() + declared.healthy_wait_timeout
    while True:
        c = engine.containers.get(declared.name)
        health = (c.state.get("Health") or {}).get("Status")
        if c.status != "running":
            raise RuntimeFailure(f"container {declared.name} is {c.status} (exit code {c.exit_code}), not healthy; "
                                 f"see `imod logs {declared.name}`")
        if health in (None, "healthy"):
            return health or "none"  # no healthcheck: healthy means started, as in community.docker
        if health == "unhealthy":
            raise RuntimeFailure(f"container {declared.name} is unhealthy; its healthcheck log is in "
                                 f"`imod inspect {declared.name}` (State.Health.Log)")
        if time.monotonic() >= deadline:
            raise RuntimeFailure(f"container {declared.name} is still {health} after "
                                 f"{declared.healthy_wait_timeout:g}s; raise healthy_wait_timeout or check the "
                                 "healthcheck")
        time.sleep(HEALTH_POLL)
