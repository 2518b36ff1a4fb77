"""Execution module `intermodal`: the engine's operations for `salt '*' intermodal.<fn>`.

Results are plain data (what `imod inspect` and friends show); engine errors
become `CommandExecutionError` with the engine's message. Every function
takes `root`, the engine root; without it the minion option (or pillar key)
`intermodal.root` is used, else the engine's default.

    salt '*' intermodal.pull busybox:1.36
    salt '*' intermodal.run busybox:1.36 cmd='echo hi'
    salt '*' intermodal.ps all=True
"""

from __future__ import annotations

import functools
import os
import sys

__virtualname__ = "intermodal"
__func_alias__ = {"exec_": "exec"}



def __virtual__():
    if not sys.platform.startswith("linux"):
        return (False, "the intermodal engine runs containers on Linux only (namespaces, cgroups, overlayfs)")
    if os.geteuid() != 0:
        return (False, "the intermodal engine needs root to run containers; run the minion (or salt-call) as root")
    try:
        import intermodal.engine  # noqa: F401
    except ImportError as err:
        return (False, f"the intermodal package cannot be imported ({err}); pip install intermodal[salt] into "
                       "the minion's Python")
    return __virtualname__


def _errors(fn):
    """Engine errors as CommandExecutionError with the engine's message (Salt shows it as the result)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from salt.exceptions import CommandExecutionError

        from intermodal.errors import IntermodalError

        try:
            return fn(*args, **{k: v for k, v in kwargs.items() if not k.startswith("__")})
        except IntermodalError as err:
            raise CommandExecutionError(str(err)) from None

    return wrapper


def _engine(root=None):
    from intermodal.salt.common import engine_for

    return engine_for(root, __salt__["config.get"])  # noqa: F821 - injected by Salt's loader


def _spec(image, name, kwargs):
    """docker_container's arguments as the engine's ContainerSpec, through the planner's normalisation."""
    import uuid

    from intermodal.declare import container
    from intermodal.salt.common import container_options

    options = container_options(name or f"salt-{uuid.uuid4().hex[:12]}", {**kwargs, "image": image})
    declared = container.declare(options)
    return declared.spec, declared.pull_options


@_errors
def version(root=None):
    """The engine's version and root.

    CLI Example: ``salt '*' intermodal.version``
    """
    import intermodal

    engine = _engine(root)
    return {"Version": intermodal.__version__, "Root": str(engine.paths.root)}


# -- images --------------------------------------------------------------------------------------------------


@_errors
def pull(image, insecure_registry=False, platform=None, root=None):
    """Pull *image* (bare names mean :latest); returns its Id and tags.

    CLI Example: ``salt '*' intermodal.pull busybox:1.36``
    """
    options = {"tls_verify": not insecure_registry, **({"platform": platform} if platform else {})}
    record = _engine(root).images.pull(image, **options)
    return {"Id": record.id, "RepoTags": list(record.tags)}


@_errors
def push(image, destination=None, insecure_registry=False, root=None):
    """Push *image* (to *destination* when given); returns the manifest digest.

    CLI Example: ``salt '*' intermodal.push registry.local/app:1``
    """
    return {"Digest": _engine(root).images.push(image, destination, tls_verify=not insecure_registry)}


@_errors
def images(root=None):
    """The local images: Id, RepoTags, Size.

    CLI Example: ``salt '*' intermodal.images``
    """
    return [{"Id": r.id, "RepoTags": list(r.tags), "Size": r.size} for r in _engine(root).images.list()]


@_errors
def inspect_image(name, root=None):
    """The image as `docker image inspect` shows it.

    CLI Example: ``salt '*' intermodal.inspect_image busybox``
    """
    return _engine(root).images.inspect(name)


@_errors
def rmi(*names, force=False, root=None):
    """Remove images; returns what was untagged and deleted.

    CLI Example: ``salt '*' intermodal.rmi busybox:1.36 force=True``
    """
    engine = _engine(root)
    return [entry for name in names for entry in engine.images.remove(name, force=force)]


@_errors
def build(path, repository=None, dockerfile=None, buildargs=None, nocache=False, target=None, root=None):
    """Build an image from the context directory *path*, tagged *repository*; returns its Id and tags.
    *dockerfile*: relative to *path* (default: Dockerfile there).

    CLI Example: ``salt '*' intermodal.build /srv/app repository=app:1``
    """
    import io

    from intermodal.declare import normalise
    from intermodal.salt.common import dockerfile_path

    options = {"no_cache": bool(nocache)}
    if dockerfile:
        options["dockerfile"] = dockerfile_path(path, dockerfile)  # relative to the context, as in Salt
    if buildargs:
        options["build_args"] = normalise.string_map(buildargs, "buildargs")
    if target:
        options["target"] = target
    output = io.StringIO()
    record = _engine(root).images.build(path, tags=(repository,) if repository else (), output=output, **options)
    return {"Id": record.id, "RepoTags": list(record.tags), "Output": output.getvalue()}


@_errors
def load(path, repository=None, root=None):
    """Load a docker-archive or OCI archive; with *repository*, tag the (single) image so.

    CLI Example: ``salt '*' intermodal.load /tmp/app.tar``
    """
    engine = _engine(root)
    records = engine.images.load(path)
    if repository and len(records) == 1:
        records = [engine.images.tag(records[0].id, repository)]
    return [{"Id": r.id, "RepoTags": list(r.tags)} for r in records]


@_errors
def save(name, path, format="docker-archive", root=None):
    """Save image(s) *name* (a name or a list) to the archive *path*.

    CLI Example: ``salt '*' intermodal.save busybox /tmp/busybox.tar``
    """
    names = [name] if isinstance(name, str) else list(name)
    _engine(root).images.save(names, path, format=format)
    return {"Path": path, "Images": names}


@_errors
def tag(source, target, root=None):
    """Tag image *source* as *target*.

    CLI Example: ``salt '*' intermodal.tag busybox registry.local/busybox:1``
    """
    record = _engine(root).images.tag(source, target)
    return {"Id": record.id, "RepoTags": list(record.tags)}


# -- containers ----------------------------------------------------------------------------------------------


@_errors
def create(image, name=None, root=None, **kwargs):
    """Create a container (docker_container's arguments); returns its inspect.

    CLI Example: ``salt '*' intermodal.create busybox name=web cmd='sleep 100'``
    """
    engine = _engine(root)
    spec, pull_options = _spec(image, name, kwargs)
    container = engine.containers.create(spec, pull_options=dict(pull_options))
    return engine.containers.inspect(container.id)


@_errors
def run(image, name=None, bg=False, timeout=None, root=None, **kwargs):
    """Create and start a container; unless *bg*, wait for it (up to *timeout* s) and return its exit code
    and logs.

    CLI Example: ``salt '*' intermodal.run busybox cmd='echo hi'``
    """
    from intermodal.salt.common import RUN_WAIT, run_container

    return run_container(_engine(root), _spec(image, name, kwargs), bg=bool(bg),
                         timeout=RUN_WAIT if timeout is None else float(timeout))


@_errors
def start(name, root=None):
    """Start a container; returns its status.

    CLI Example: ``salt '*' intermodal.start web``
    """
    engine = _engine(root)
    engine.containers.start(name)
    return _status(engine, name)


@_errors
def stop(name, timeout=None, root=None):
    """Stop a container (its stop signal, SIGKILL after *timeout* s); returns its status.

    CLI Example: ``salt '*' intermodal.stop web timeout=5``
    """
    engine = _engine(root)
    engine.containers.stop(name, timeout=None if timeout is None else int(timeout))
    return _status(engine, name)


@_errors
def restart(name, timeout=None, root=None):
    """Stop then start a container; returns its status.

    CLI Example: ``salt '*' intermodal.restart web``
    """
    engine = _engine(root)
    engine.containers.restart(name, timeout=None if timeout is None else int(timeout))
    return _status(engine, name)


@_errors
def kill(name, signal="SIGKILL", root=None):
    """Send *signal* (name or number) to a running container; returns its status.

    CLI Example: ``salt '*' intermodal.kill web signal=SIGHUP``
    """
    from intermodal.containers.spec import parse_signal

    engine = _engine(root)
    engine.containers.kill(name, parse_signal(str(signal)))
    return _status(engine, name)


@_errors
def rm(name, force=False, volumes=False, root=None):
    """Remove a container (*force*: running too; *volumes*: its anonymous volumes); returns its id.

    CLI Example: ``salt '*' intermodal.rm web force=True``
    """
    return {"Id": _engine(root).containers.remove(name, force=force, volumes=volumes)}


@_errors
def ps(all=False, root=None):
    """Containers (running ones; *all*: every one): Id, Name, Image, Status.

    CLI Example: ``salt '*' intermodal.ps all=True``
    """
    engine = _engine(root)
    if not engine.paths.containers.is_dir():
        return []
    return [{"Id": c.id, "Name": c.name, "Image": c.record.get("ImageName"), "Status": c.status}
            for c in engine.containers.list() if all or c.status == "running"]


@_errors
def inspect_container(name, root=None):
    """The container as `docker inspect` shows it.

    CLI Example: ``salt '*' intermodal.inspect_container web``
    """
    return _engine(root).containers.inspect(name)


@_errors
def logs(name, tail=None, root=None):
    """The container's log (stdout and stderr, in order) as text.

    CLI Example: ``salt '*' intermodal.logs web tail=20``
    """
    records = _engine(root).containers.logs(name, tail=None if tail is None else int(tail))
    return "".join(r.get("log", "") for r in records)


@_errors
def exec_(name, cmd, env=None, workdir=None, user=None, timeout=None, root=None):
    """Run *cmd* (a string split like a shell, or a list) in a running container: retcode, stdout, stderr.
    It may take *timeout* seconds (default an hour), then the call fails.

    CLI Example: ``salt '*' intermodal.exec web 'cat /etc/hostname'``
    """
    from intermodal.salt.common import exec_in

    return exec_in(_engine(root), name, cmd, env=env, workdir=workdir, user=user,
                   timeout=None if timeout is None else float(timeout))


# -- networks, volumes, prune ----------------------------------------------------------------------------------


@_errors
def networks(root=None):
    """The networks as `docker network inspect` shows them.

    CLI Example: ``salt '*' intermodal.networks``
    """
    engine = _engine(root)
    return [engine.networks.inspect(n.id) for n in engine.networks.list()]


@_errors
def volumes(root=None):
    """The volumes: Name, Driver, Mountpoint, Labels, ...

    CLI Example: ``salt '*' intermodal.volumes``
    """
    return _engine(root).volumes.list()


@_errors
def prune(containers=False, images=False, networks=False, volumes=False, all=False, root=None):
    """Remove stopped containers, unused networks, unused volumes, dangling images (*all*: every unused
    image and volume). With no resource named, all four are pruned. Returns what was removed.

    CLI Example: ``salt '*' intermodal.prune containers=True images=True``
    """
    engine = _engine(root)
    if not (containers or images or networks or volumes):
        containers = images = networks = volumes = True
    result = {}
    if containers:
        result["Containers"] = engine.containers.prune() if engine.paths.containers.is_dir() else []
    if networks:
        result["Networks"] = engine.networks.prune()
    if volumes:
        result["Volumes"] = engine.volumes.prune(all=bool(all))["VolumesDeleted"]
    if images:
        deleted = engine.images.prune(all=bool(all))["ImagesDeleted"]
        result["Images"] = [d["Deleted"] for d in deleted if "Deleted" in d]
    return result


def _status(engine, name):
    c = engine.containers.get(name)
    return {"Id": c.id, "Name": c.name, "Status": c.status}
