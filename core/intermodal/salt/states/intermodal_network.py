"""State `intermodal_network`: present (with `containers` connected) and absent.

Arguments are docker_network's (`driver`, `driver_opts`, `subnet`,
`gateway`, `iprange`, `ipam_pools`, `internal`, `labels`, `containers`,
`reconnect`; their aliases, skip_translate) or community.docker's. Options
left out are the engine's choice and never compared (an engine-picked subnet
is no drift); a declared option that differs recreates the network, taking
its containers off and (with `reconnect`, the default) putting them back.
`containers` connects the listed running containers and disconnects none;
`absent` disconnects every container first. As in docker_network.

.. code-block:: yaml

    backend:
      intermodal_network.present:
        - subnet: 10.30.0.0/24
        - containers: [web]
"""

from __future__ import annotations

__virtualname__ = "intermodal_network"


def __virtual__():
    if "intermodal.version" in __salt__:  # noqa: F821 - injected by Salt's loader
        return __virtualname__
    return (False, __salt__.missing_fun_string("intermodal.version"))  # noqa: F821


def _converge(name, state, root, kwargs, containers=None, reconnect=True):
    from intermodal.declare import network
    from intermodal.errors import IntermodalError
    from intermodal.salt.common import engine_for, failure, network_options, state_return

    test = bool(__opts__.get("test"))  # noqa: F821
    warnings = []
    try:
        engine = engine_for(root, __salt__["config.get"])  # noqa: F821
        options = network_options(name, kwargs, state=state)
        if containers is not None:
            # docker_network: the listed containers that run are connected; none is disconnected.
            options.update(connected=_running(engine, containers, warnings), appends=True)
        declared = network.declare(options)
        record = network.read(engine, declared.name)
        the_plan = network.plan(declared, record, **network.read_attached(engine, declared))
        before = _attached(engine, name) if record is not None else {}
        moves = _moves(the_plan, before, declared, reconnect)
        if not test:
            _apply(engine, declared, the_plan, before, moves)
    except IntermodalError as err:
        return failure(name, str(err))
    ret = state_return(name, "Network", the_plan, test=test)
    ret["changes"].update(moves)
    if moves:
        verb = "would be" if test else "were"
        ret["comment"] += "".join(f" Containers {verb} {k}: {', '.join(v)}." for k, v in moves.items())
    if warnings:
        ret["warnings"] = ret.get("warnings", []) + warnings
    return ret


def _running(engine, containers, warnings):
    """The names among *containers* that run; the others are warnings, as in docker_network."""
    from intermodal.declare.container import named
    from intermodal.salt.common import _split

    names = _split(containers, True)
    found = {n: named(engine, n) for n in names}
    missing = [n for n in names if found[n] is None]
    stopped = [n for n in names if n not in missing and found[n].status != "running"]
    if missing:
        warnings.append(f"The following containers do not exist: {', '.join(missing)}.")
    if stopped:
        warnings.append(f"The following containers are not running: {', '.join(stopped)}.")
    return [n for n in names if n not in missing and n not in stopped]


def _attached(engine, name):
    """{container name: its IPv4 address} on the network now."""
    containers = engine.networks.inspect(name)["Containers"].values()
    return {c["Name"]: c["IPv4Address"].partition("/")[0] for c in containers}


def _moves(the_plan, before, declared, reconnect):
    """Containers a recreate or removal takes off the network: reconnected after a recreate (when
    *containers* is not given and *reconnect*, as docker_network does), else disconnected."""
    if not before or not (the_plan.has("recreate") or the_plan.has("remove")):
        return {}
    again = the_plan.has("recreate") and declared.connected is None and reconnect
    kept = set(declared.connected or ())
    gone = sorted(n for n in before if not again and n not in kept)
    out = {"reconnected": sorted(before)} if again else {}
    if kept & set(before) and the_plan.has("recreate"):
        out["reconnected"] = sorted(kept & set(before))
    if gone:
        out["disconnected"] = gone
    return out


def _apply(engine, declared, the_plan, before, moves):
    """The engine removes only an unused network: take its containers off first, put them back after."""
    from intermodal.declare import network
    from intermodal.declare.plan import Plan
    from intermodal.errors import IntermodalError

    if moves:
        network.apply(engine, declared, Plan(tuple(f"disconnect:{n}" for n in sorted(before))))
    network.apply(engine, declared, the_plan)
    connected = {a.partition(":")[2] for a in the_plan.actions if a.startswith("connect:")}
    for name in moves.get("reconnected", ()):
        if name in connected:
            continue
        c = engine.containers.get(name)
        netns = f"/proc/{int(c.state['Pid'])}/ns/net"
        try:  # its old address first; a new subnet may not hold it, then the engine picks one
            engine.networks.connect(declared.name, c.id, netns, ip=before[name], name=c.name)
        except IntermodalError:
            engine.networks.connect(declared.name, c.id, netns, name=c.name)


def present(name, containers=None, reconnect=True, root=None, **kwargs):
    """The network exists as declared.

    containers
        Containers connected to it (those that run; missing or stopped ones are warnings). Others stay
        connected, as with docker_network.
    reconnect
        When a declared option differs the network is recreated; its containers are taken off first and,
        with *reconnect* (the default) and no *containers*, connected again (with their old address when
        the new subnet holds it). With *containers*, the unlisted ones stay disconnected.
    """
    return _converge(name, "present", root, kwargs, containers=containers, reconnect=bool(reconnect))


def absent(name, root=None, **kwargs):
    """The network does not exist; its containers are disconnected first, as with docker_network."""
    return _converge(name, "absent", root, kwargs)


def mod_watch(name, sfun=None, **kwargs):
    from intermodal.salt.common import failure

    return failure(name, f"watch requisite is not implemented for {sfun}")
