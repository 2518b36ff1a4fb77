"""Containers: a declaration against the container's stored, normalised spec.

The engine stores each container's `ContainerSpec` as the user gave it (None
for what the image supplies). Both sides are filled from their image the
same way before comparing, so an image-supplied value is never drift, a value
equal to the image's is no change, and an option dropped from the
declaration is a change back to the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from intermodal.containers.spec import ContainerSpec
from intermodal.declare import normalise as norm
from intermodal.declare.compare import equal
from intermodal.declare.options import UPDATE, change_kind, comparison_modes
from intermodal.declare.plan import Difference, Plan
from intermodal.errors import ImageNotFound, IntermodalError, InvalidArgument

if TYPE_CHECKING:
    from intermodal.engine import Engine

DEFAULT_STOP_TIMEOUT = 10
SPEC_FIELDS = frozenset(ContainerSpec.__dataclass_fields__)
STATES = ("absent", "present", "stopped", "started", "healthy")
HEALTH_POLL = 0.2
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


@dataclass(frozen=True)
class Current:
    """What the engine has for the name: the stored spec, the image it runs, its status."""

    id: str
    spec: ContainerSpec
    image_id: str
    image_config: Mapping[str, Any]
    status: str


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
    modes = comparison_modes("container", o.get("comparisons"))
    common = {"name": name, "state": "started" if state == "healthy" else state, "modes": modes,
              "wait_healthy": state == "healthy", "healthy_wait_timeout": float(o.get("healthy_wait_timeout", 300)),
              "pull": o.get("pull", "missing"), "recreate": bool(o.get("recreate")), "restart": bool(o.get("restart")),
              "keep_volumes": bool(o.get("keep_volumes", True))}
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
             "pids_limit": "pids_limit", "init": "init"}
    fields.update({plain[k]: v for k, v in o.items() if k in plain})
    spec = ContainerSpec.build(str(o["image"]), name=name, **fields)
    return Declared(spec=spec, pull_options={"tls_verify": bool(o.get("validate_certs", True))}, **common)


def _network(o: Mapping[str, Any]) -> dict[str, Any]:
    """network_mode, networks and published_ports as the spec's network, ip, network_aliases and ports."""
    out: dict[str, Any] = {}
    mode = o.get("network_mode")
    if mode is not None:
        out["network"] = "bridge" if mode == "default" else str(mode)  # Docker: default is bridge
    networks = o.get("networks")
    if networks:
        if "ip" not in SPEC_FIELDS:
            raise InvalidArgument("networks: this engine cannot join containers to networks yet; use network_mode "
                                  "none or host")
        if len(networks) > 1:
            raise InvalidArgument("networks: the engine joins a container to one network so far; give one")
        net = networks[0]
        if not net.get("name"):
            raise InvalidArgument("networks: each item needs a name")
        if mode is not None and out["network"] != net["name"]:
            raise InvalidArgument(f"network_mode {mode} and networks {net['name']} disagree; give one of them")
        out["network"] = str(net["name"])
        if net.get("ipv4_address"):
            out["ip"] = norm.ip(net["ipv4_address"])
        if net.get("aliases"):
            out["network_aliases"] = tuple(str(a) for a in net["aliases"])
    if o.get("published_ports"):
        out["ports"] = tuple(str(p) for p in o["published_ports"])
    return out


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
        "workdir": spec.workdir or img.get("WorkingDir") or "/",
        "user": spec.user if spec.user is not None else img.get("User") or "",
        "hostname": spec.hostname,
        "labels": {**(img.get("Labels") or {}), **dict(spec.labels)},
        "mounts": norm.mount_set(spec.mounts),
        "network": {"name": spec.network, "ip": norm.ip(ip) if (ip := getattr(spec, "ip", None)) else None,
                    "aliases": frozenset(getattr(spec, "network_aliases", ()))},
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
    }


def actual(current: Current) -> dict[str, Any]:
    """The stored spec filled from the image the container runs, exactly as `expected` fills a declaration."""
    return expected(current.spec, current.image_config)


def compare(declared: Mapping[str, Any], current: Mapping[str, Any], modes: Mapping[str, str]
            ) -> list[Difference]:
    return [Difference(name, declared[name], current.get(name)) for name in declared
            if not equal(declared[name], current.get(name), modes.get(name, "strict"))]


# -- plan -----------------------------------------------------------------------------------------------


def plan(declared: Declared, current: Current | None, *, image_id: str | None = None,
         image_config: Mapping[str, Any] | None = None, remote_id: str | None = None,
         can_update: bool = False) -> Plan:
    """The actions that bring *current* to *declared*. Pure: *image_id*/*image_config* are the declared
    image as the store has it now (None: not present locally, so it would be pulled); *remote_id* is
    the id the registry names for it (pull=always; "unknown" when it could not be asked)."""
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
        differences += compare(expected(declared.spec, image_config or {}), actual(current), declared.modes)
    in_place = bool(differences) and can_update and all(change_kind("container", d.name) == UPDATE
                                                       for d in differences)
    running = current.status in LIVE
    if declared.recreate or (differences and not in_place):
        actions.append("recreate")
        if declared.state == "started" or (declared.state == "present" and running):
            actions.append("start")
    else:
        if in_place:
            actions.append("update")
        if declared.state == "started" and not running:
            actions.append("start")
        elif declared.state == "stopped" and running:
            actions.append("stop")
        elif declared.restart and running and declared.state != "stopped":
            actions.append("restart")
    return Plan(tuple(actions), tuple(differences), tuple(warnings),
                data={"image_id": image_id, "can_update": can_update})


def read(engine: Engine, declared: Declared) -> tuple[Current | None, str | None, dict[str, Any] | None]:
    """What the plan needs from the engine: the current container and the declared image (no changes made)."""
    current = None
    if engine.containers.exists(declared.name):
        c = engine.containers.get(declared.name)
        try:
            config = engine.images.config(c.record["Image"])
        except ImageNotFound:
            config = {}
        current = Current(c.id, c.spec, c.record["Image"], config, c.status)
    image_id = image_config = None
    if declared.spec is not None:
        try:
            record = engine.images.get(declared.spec.image)
            image_id, image_config = record.id, engine.images.config(record)
        except ImageNotFound:
            pass
    return current, image_id, image_config


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
                can_update=hasattr(engine.containers, "update"))


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
                    can_update=hasattr(engine.containers, "update"))
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
            containers.remove(declared.name, force=True, volumes=not declared.keep_volumes)
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
            changed = {d.name for d in the_plan.differences}
            containers.update(declared.name, **{f: getattr(declared.spec, f) for f in changed})


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
