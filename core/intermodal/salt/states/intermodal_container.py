"""State `intermodal_container`: running, stopped, absent, and the one-shot `run`.

Arguments are docker_container's (`environment`, `binds`, `port_bindings`,
`mem_limit`, `networks`, `force`, ...; `intermodal.salt.common` maps them) or
community.docker's; `root` (or the minion option `intermodal.root`) names the
engine root. Decisions are `intermodal.declare`'s, the planner the Ansible
module uses: `test=True` returns `result: None` with the changes the plan
predicts, and runs nothing.

.. code-block:: yaml

    web:
      intermodal_container.running:
        - image: busybox:1.36
        - command: httpd -f -p 8080
        - environment: {MODE: prod}
        - require:
          - intermodal_image: busybox:1.36
"""

from __future__ import annotations

__virtualname__ = "intermodal_container"

NOT_RUNNING = "Container '{}' is not running after its start ({}, exit code {}); see `imod logs {}`."


def __virtual__():
    if "intermodal.version" in __salt__:  # noqa: F821 - injected by Salt's loader
        return __virtualname__
    return (False, __salt__.missing_fun_string("intermodal.version"))  # noqa: F821


def _engine(root):
    from intermodal.salt.common import engine_for

    return engine_for(root, __salt__["config.get"])  # noqa: F821


def _test():
    return bool(__opts__.get("test"))  # noqa: F821


def _status(engine, name):
    from intermodal.declare.container import named

    c = named(engine, name)  # by name only: c8 is no id prefix here
    return "absent" if c is None else c.status


def _converge(name, state, root, kwargs, *, planner=None, shutdown_timeout=None, send_signal=None):
    """Declare, plan, run unless test; the state return with old/new of each difference and of the status.

    *planner*: options in the planner's names that no Salt argument sets (restart for watch_action).
    *send_signal*: a watch fired with a signal as watch_action; sent when nothing else is due.
    """
    from intermodal.declare import container
    from intermodal.errors import IntermodalError
    from intermodal.salt.common import container_options, failure, state_return

    test = _test()
    try:
        engine = _engine(root)
        declared = container.declare({**container_options(name, kwargs, state=state), **(planner or {})})
        the_plan = container.make_plan(engine, declared)
        before = _status(engine, name)
        if send_signal is not None and not the_plan.changed and before == "running":
            return _signal(engine, name, send_signal)
        if test or not the_plan.changed:
            ret = _with_status(state_return(name, "Container", the_plan, test=test), before, declared.state,
                               the_plan.changed)
            return _forced(ret, the_plan, declared)
        _stop_gracefully(engine, name, the_plan, before, shutdown_timeout)
        changed, the_plan = container.apply(engine, declared, the_plan)
        after = _status(engine, name)
    except IntermodalError as err:
        return failure(name, str(err))
    ret = _with_status(state_return(name, "Container", the_plan, test=False, changed=changed), before, after, changed)
    if declared.state == "started" and after != "running":
        c = engine.containers.get(name)
        ret.update(result=False, comment=NOT_RUNNING.format(name, after, c.exit_code, name))
    return _forced(ret, the_plan, declared)


def _stop_gracefully(engine, name, the_plan, status, timeout):
    """docker_container replaces a running container after a stop (its stop signal, then SIGKILL after
    *timeout*, else its stop_timeout, else 10 s), not a kill: the old process may flush and exit cleanly."""
    from intermodal.declare.container import LIVE

    if status in LIVE and the_plan.has("recreate") and not the_plan.has("pull"):
        engine.containers.stop(name, timeout=None if timeout is None else int(timeout))


def _forced(ret, the_plan, declared):
    """force replaced a container that differed in nothing: say so in the changes (docker_container's key)."""
    if declared.recreate and the_plan.has("recreate") and not the_plan.differences and ret["result"] is not False:
        ret["changes"]["forced_update"] = True
    return ret


def _with_status(ret, before, after, moved):
    """A start, stop or create shows as the container's status moving (old/new), as docker_container does."""
    wanted = {"started": "running", "present": "created", "stopped": "exited"}.get(after, after)
    if moved and before != wanted:
        ret["changes"]["state"] = {"old": before, "new": wanted}
    return ret


def running(name, image=None, start=True, force=False, shutdown_timeout=None, root=None, **kwargs):
    """The container exists as declared and (with *start*, the default) runs.

    name
        The container's name.
    image
        The image (repository:tag; a bare name means :latest). Pulled when missing.
    start
        False: created, not started (docker_container's ``start: False``).
    force
        Replace the container even if nothing differs (changes: ``forced_update``).
    shutdown_timeout
        Seconds a running container that is replaced gets between its stop signal and SIGKILL (default:
        its stop_timeout, else 10).
    watch_action
        What a ``watch`` that fired does: ``force`` (the default) replaces the container; a signal name
        or number (``SIGHUP``) is sent to it when it runs as declared; ``restart`` restarts it.

    Any other docker_container argument (command, environment, labels, binds, port_bindings, networks,
    network_mode, restart_policy, mem_limit, ...; skip_translate and ignore_collisions as in Salt).
    """
    if image is None:
        from intermodal.salt.common import failure

        return failure(name, "The 'image' argument is required.")
    planner = {"restart": True} if kwargs.pop("_restart", False) else None  # set by mod_watch only
    send_signal = kwargs.pop("_signal", None)
    return _converge(name, "started" if start else "present", root, {**kwargs, "image": image, "force": force},
                     planner=planner, shutdown_timeout=shutdown_timeout, send_signal=send_signal)


def stopped(name=None, containers=None, shutdown_timeout=None, unpause=False, error_on_absent=True, image=None,
            root=None, **kwargs):
    """The container (or each of *containers*) is not running.

    Without *image* an existing container is only stopped: its stop signal, then SIGKILL after
    *shutdown_timeout* (default: its stop_timeout, else 10 s). An absent one fails unless
    *error_on_absent* is False; a paused one fails unless *unpause*. With *image* the container is also
    created or replaced as declared (the planner decides, as for running).
    """
    from intermodal.salt.common import failure

    if image is not None:
        return _converge(name, "stopped", root, {**kwargs, "image": image}, shutdown_timeout=shutdown_timeout)
    if not name and not containers:
        return failure(name, "One of 'name' and 'containers' must be provided.")
    targets = [str(c) for c in containers] if containers else [str(name)]
    rets = [_stop_one(t, root, shutdown_timeout, unpause, error_on_absent) for t in targets]
    if not containers:
        return rets[0]
    failed = [r for r in rets if r["result"] is False]
    return {"name": name, "result": False if failed else None if any(r["result"] is None for r in rets) else True,
            "changes": {r["name"]: r["changes"] for r in rets if r["changes"]},
            "comment": " ".join(r["comment"] for r in (failed or rets))}


def _stop_one(name, root, shutdown_timeout, unpause, error_on_absent):
    from intermodal.declare import container
    from intermodal.errors import IntermodalError
    from intermodal.salt.common import failure, state_return

    test = _test()
    try:
        engine = _engine(root)
        current, _, _ = container.read(engine, container.Declared(name=name, state="absent"))
        if current is None:
            if error_on_absent:
                return failure(name, f"Container '{name}' is absent.")
            return {"name": name, "result": True, "changes": {}, "comment": f"Container '{name}' is absent."}
        if current.status == "paused" and not unpause:
            return failure(name, f"Container '{name}' is paused; set unpause to True to stop it.")
        # Its own stored spec, declared stopped: the planner decides whether a stop is due.
        declared = container.Declared(name=name, state="stopped", spec=current.spec)
        the_plan = container.plan(declared, current, image_id=current.image_id, image_config=current.image_config)
        if not test and the_plan.changed:
            if current.status == "paused":
                engine.containers.unpause(name)
            engine.containers.stop(name, timeout=None if shutdown_timeout is None else int(shutdown_timeout))
        after = "exited" if test else _status(engine, name)
    except IntermodalError as err:
        return failure(name, str(err))
    return _with_status(state_return(name, "Container", the_plan, test=test), current.status, after,
                        the_plan.changed)


def absent(name, force=False, root=None, **kwargs):
    """The container does not exist. A running container is removed only with *force*."""
    from intermodal.declare import container
    from intermodal.errors import IntermodalError
    from intermodal.salt.common import failure, state_return

    try:
        engine = _engine(root)
        declared = container.declare({"name": name, "state": "absent",
                                      "keep_volumes": not kwargs.get("volumes", False)})
        the_plan = container.make_plan(engine, declared)
        status = _status(engine, name)
        if the_plan.changed and status in container.LIVE and not force:
            return failure(name, f"Container '{name}' is {status}; set force to True to forcibly remove it.")
        if not _test() and the_plan.changed:
            container.apply(engine, declared, the_plan)
    except IntermodalError as err:
        return failure(name, str(err))
    return state_return(name, "Container", the_plan, test=_test())


def run(name, image=None, bg=False, failhard=True, replace=False, force=False, timeout=None, root=None,
        **kwargs):
    """Run a one-shot container *name* and wait for it (unless *bg*; at most *timeout* seconds, default an
    hour, then the state fails). Always a change when it runs; guard it with Salt's ``onlyif``, ``unless``
    or ``creates``. An existing container of that name fails the state unless *replace* (and *force* for a
    running one). With *failhard* (default), a non-zero exit fails. *rm*: removed once its exit code and
    logs are read.
    """
    from intermodal.declare import container
    from intermodal.errors import IntermodalError
    from intermodal.records import replace as replace_record
    from intermodal.salt.common import RUN_WAIT, clean, container_options, failure, run_container

    if image is None:
        return failure(name, "The 'image' argument is required.")
    for unsupported in ("watch_action", "start", "shutdown_timeout", "follow"):
        if unsupported in kwargs:
            return failure(name, f"The '{unsupported}' argument is not supported.")
    try:
        engine = _engine(root)
        declared = container.declare(container_options(name, {**clean(kwargs), "image": image}))
        status = _status(engine, name)
        if status != "absent":
            if not replace:
                return failure(name, f"Container '{name}' exists; set replace to True to remove it first.")
            if status in container.LIVE and not force:
                return failure(name, f"Container '{name}' is {status}; set force to True to replace it.")
        if _test():
            return {"name": name, "result": None, "changes": {},
                    "comment": f"Container would be run{' in the background' if bg else ''}."}
        if status != "absent":
            engine.containers.remove(name, force=True)
        spec = declared.spec
        remove = spec.auto_remove and not bg  # as docker_container.run: kept until its exit code and logs are read
        if remove:
            spec = replace_record(spec, auto_remove=False)
        result = run_container(engine, (spec, declared.pull_options), bg=bool(bg),
                               timeout=RUN_WAIT if timeout is None else float(timeout))
        if remove:
            engine.containers.remove(result["Id"], force=True)
    except IntermodalError as err:
        return failure(name, str(err))
    ret = {"name": name, "result": True, "changes": result}
    if bg:
        ret["comment"] = "Container was run in the background."
    else:
        ret["comment"] = f"Container ran and exited with a return code of {result['ExitCode']}."
        if failhard and result["ExitCode"] != 0:
            ret["result"] = False
    return ret


def mod_watch(name, sfun=None, **kwargs):
    """A `watch` that fired. running: replaced (watch_action: force, the default), restarted (watch_action:
    restart) or sent a signal (watch_action: SIGHUP, ...; when the container runs as declared, else it is
    replaced or started instead); stopped: stopped again; run: run again (replacing the old one)."""
    from intermodal.salt.common import clean, failure

    kwargs = clean(kwargs)
    if sfun == "running":
        action = kwargs.pop("watch_action", "force")
        if action == "force":
            kwargs["force"] = True
        elif action == "restart":
            kwargs["_restart"] = True
        else:
            kwargs["_signal"] = action
        return running(name, **kwargs)
    if sfun == "stopped":
        return stopped(name, **kwargs)
    if sfun == "run":
        return run(name, **{**kwargs, "replace": True, "force": True})
    return failure(name, f"watch requisite is not implemented for {sfun}")


def _signal(engine, name, signal):
    """Send *signal* to the running container: a change (`signal`), predicted the same under test."""
    from intermodal.containers.spec import parse_signal

    ret = {"name": name, "result": True, "changes": {"signal": signal}}
    if _test():
        return {**ret, "result": None, "comment": f"Signal {signal} would be sent to container '{name}'."}
    engine.containers.kill(name, parse_signal(str(signal)))
    return {**ret, "comment": f"Sent signal {signal} to container '{name}'."}
