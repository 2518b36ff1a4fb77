# Copyright: intermodal developers
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""What every intermodal.containers module runs: argument spec from the shared option table, plan, apply.

The decisions are `intermodal.declare`'s (shared with the Salt states); this
file only maps them to Ansible: check mode does not execute the plan, the
diff shows before/after of each differing option, warnings become module
warnings, engine errors become failures with the engine's message.
"""

from __future__ import annotations

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    from intermodal.declare import options as declare_options
    from intermodal.errors import IntermodalError
except ImportError:
    ENGINE_IMPORT_ERROR = traceback.format_exc()
    declare_options = None
    IntermodalError = Exception  # only caught once the engine is importable
else:
    ENGINE_IMPORT_ERROR = None

# missing_required_lib says "This is required <ENGINE_HINT>."
ENGINE_HINT = ("on the target host, where the modules run the engine: install it with the role "
               "intermodal.containers.engine (or pip install intermodal) and point ansible_python_interpreter "
               "at that Python (/opt/intermodal/bin/python with the role)")
TYPES = {"str": "str", "int": "int", "bool": "bool", "float": "float", "list": "list", "dict": "dict",
         "path": "path", "raw": "raw"}


def argument_spec(kind):
    """The Ansible argument spec of *kind*, generated from the declare option table."""
    spec = {}
    for option in declare_options.table(kind).values():
        arg = {"type": TYPES[option.type]}
        if option.elements:
            arg["elements"] = option.elements
        if option.choices:
            arg["choices"] = list(option.choices)
        if option.aliases:
            arg["aliases"] = list(option.aliases)
        if option.default is not None:
            arg["default"] = option.default
        if option.required:
            arg["required"] = True
        spec[option.name] = arg
    return spec


def _fail_without_engine():
    """The engine is not importable on the target: fail with missing_required_lib, not a traceback."""
    from ansible.module_utils.basic import _load_params

    module = AnsibleModule(argument_spec={k: {"type": "raw"} for k in _load_params()}, supports_check_mode=True)
    module.fail_json(msg=missing_required_lib("intermodal", reason=ENGINE_HINT), exception=ENGINE_IMPORT_ERROR)


def new_module(kind, required=None, check_mode=True, spec=None, **kwargs):
    """The AnsibleModule of *kind*; *spec* is the module file's written-out ARGUMENT_SPEC (known without the engine)."""
    if spec is None:
        if ENGINE_IMPORT_ERROR:
            _fail_without_engine()
        spec = argument_spec(kind)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=check_mode, required_if=required or [], **kwargs)
    if ENGINE_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("intermodal", reason=ENGINE_HINT), exception=ENGINE_IMPORT_ERROR)
    return module


def engine_for(module):
    from intermodal.engine import Engine

    return Engine(root=module.params.get("root"))


def run_module(kind, spec=None):
    """One resource module: declare, plan, run unless check mode, return changed/diff/the object."""
    required = {"container": [("state", "present", ["image"]), ("state", "started", ["image"]),
                              ("state", "stopped", ["image"])]}.get(kind)
    module = new_module(kind, required, spec=spec)
    try:
        result = _RUNNERS[kind](module, engine_for(module))
    except IntermodalError as err:
        module.fail_json(msg=str(err), error=type(err).__name__)
    module.exit_json(**result)


def _report(module, plan, changed, **extra):
    for warning in plan.warnings:
        module.warn(warning)
    data = plan.to_data()
    del data["warnings"]  # Ansible shows module.warn() itself; a `warnings` key would be shown twice
    result = {"changed": changed, **data, **extra}
    if module._diff:
        before, after = plan.before_after()
        # The headers say what happens to the object: e.g. "web: update" (in place) or "web: recreate, start".
        name = module.params.get("name")
        result["diff"] = {"before": before, "after": after, "before_header": f"{name}",
                          "after_header": f"{name}: {', '.join(plan.actions) or 'no change'}"}
    return result


def _params(module):
    return {k: v for k, v in module.params.items() if k != "root"}


def _container(module, engine):
    from intermodal.declare import container

    declared = container.declare(_params(module))
    plan = container.make_plan(engine, declared)
    changed = plan.changed
    if not module.check_mode and plan.changed:
        changed, plan = container.apply(engine, declared, plan)
    if declared.wait_healthy and not module.check_mode:
        container.wait_healthy(engine, declared)
    if not declared.detach and not module.check_mode and plan.has("start"):
        inspect = engine.containers.inspect(declared.name)
        status, output = container.run_to_end(engine, declared)
        if engine.containers.exists(declared.name):
            inspect = engine.containers.inspect(declared.name)
        result = _report(module, plan, changed, container={**inspect, "Output": output}, status=status)
        if status != 0:
            module.fail_json(msg=f"container {declared.name} exited with code {status}; its output is in "
                                 "container.Output", **result)
        return result
    exists = engine.containers.exists(declared.name)
    return _report(module, plan, changed, container=engine.containers.inspect(declared.name) if exists else {})


def _network(module, engine):
    from intermodal.declare import network

    declared = network.declare(_params(module))
    plan = network.plan(declared, network.read(engine, declared.name), **network.read_attached(engine, declared))
    if not module.check_mode:
        network.apply(engine, declared, plan)
    exists = engine.networks.exists(declared.name)
    return _report(module, plan, plan.changed, network=engine.networks.inspect(declared.name) if exists else {})


def _volume(module, engine):
    from intermodal.declare import volume

    declared = volume.declare(_params(module))
    plan = volume.plan(declared, volume.read(engine, declared.name))
    if not module.check_mode:
        volume.apply(engine, declared, plan)
    current = volume.read(engine, declared.name)
    return _report(module, plan, plan.changed, volume=current or {})


def _image(module, engine):
    from intermodal.declare import image

    declared = image.declare(_params(module))
    plan = image.plan(declared, image.read(engine, declared))
    changed = plan.changed
    if not module.check_mode and plan.changed:
        changed = image.apply(engine, declared, plan)[0]
    exists = engine.images.exists(declared.name)
    return _report(module, plan, changed, image=engine.images.inspect(declared.name) if exists else {})


_RUNNERS = {"container": _container, "network": _network, "volume": _volume, "image": _image}


def run_info(kind, spec=None):
    """An *_info module: read only, never changed."""
    module = new_module(kind, spec=spec)
    try:
        result = _INFO[kind](module, engine_for(module), module.params)
    except IntermodalError as err:
        module.fail_json(msg=str(err), error=type(err).__name__)
    module.exit_json(changed=False, **result)


def _image_info(module, engine, p):
    images = engine.images
    names = p.get("name")
    if names is None:
        return {"images": [images.inspect(r.id) for r in images.list()]}
    return {"images": [images.inspect(n) for n in names if images.exists(n)]}


def _network_info(module, engine, p):
    exists = engine.networks.exists(p["name"])
    return {"exists": exists, "network": engine.networks.inspect(p["name"]) if exists else {}}


def _volume_info(module, engine, p):
    exists = engine.volumes.exists(p["name"])
    return {"exists": exists, "volume": engine.volumes.get(p["name"]) if exists else {}}


def _container_info(module, engine, p):
    exists = engine.containers.exists(p["name"])
    return {"exists": exists, "container": engine.containers.inspect(p["name"]) if exists else {}}


def _host_info(module, engine, p):
    from intermodal.engine_info import engine_info

    info = engine_info(engine)
    containers = engine.containers.list() if engine.paths.containers.is_dir() else []
    info.update({"Containers": len(containers), "ContainersRunning": sum(c.status == "running" for c in containers),
                 "Networks": len(engine.networks.list()), "Volumes": len(engine.volumes.list())})
    result = {"host_info": info}
    if p.get("images"):
        result["images"] = [{"Id": r.id, "RepoTags": list(r.tags), "Size": r.size} for r in engine.images.list()]
    if p.get("containers"):
        result["containers"] = [{"Id": c.id, "Name": c.name, "Image": c.record.get("ImageName"),
                                 "Status": c.status} for c in containers]
    if p.get("networks"):
        result["networks"] = [{"Id": n.id, "Name": n.name, "Driver": n.driver} for n in engine.networks.list()]
    if p.get("volumes"):
        result["volumes"] = [{"Name": v["Name"], "Driver": v["Driver"]} for v in engine.volumes.list()]
    return result


_INFO = {"image_info": _image_info, "network_info": _network_info, "volume_info": _volume_info,
         "container_info": _container_info, "host_info": _host_info}


def run_exec(kind, spec=None):
    """container_exec: run a command in a running container through `imod exec`; always a change."""
    import os
    import shutil
    import subprocess
    import sys

    module = new_module(kind, check_mode=False, spec=spec, required_one_of=[("command", "argv")],
                        mutually_exclusive=[("command", "argv")])
    p = module.params
    try:
        from intermodal.declare import normalise

        argv = list(p["argv"]) if p["argv"] is not None else list(normalise.command(p["command"]) or ())
        env = normalise.string_map(p["env"], "env", strict_bools=True)
    except IntermodalError as err:
        module.fail_json(msg=str(err), error=type(err).__name__)
    if not argv:
        module.fail_json(msg="the command is empty: give command or argv")
    imod = os.path.join(os.path.dirname(sys.executable), "imod")
    imod = imod if os.path.exists(imod) else shutil.which("imod")
    if not imod:
        module.fail_json(msg=missing_required_lib("intermodal (its imod command)", reason=ENGINE_HINT))
    cmd = [imod] + (["--root", p["root"]] if p["root"] else []) + ["exec"]
    if p["stdin"] is not None:
        cmd.append("-i")
    if p["chdir"]:
        cmd += ["-w", p["chdir"]]
    if p["user"]:
        cmd += ["-u", p["user"]]
    for key, value in env.items():
        cmd += ["-e", f"{key}={value}"]
    cmd += [p["container"], *argv]
    stdin = p["stdin"] + "\n" if p["stdin"] is not None and p["stdin_add_newline"] else p["stdin"]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False,
                          stdin=None if p["stdin"] is not None else subprocess.DEVNULL)
    stdout, stderr = proc.stdout, proc.stderr
    if p["strip_empty_ends"]:
        stdout, stderr = stdout.rstrip("\r\n"), stderr.rstrip("\r\n")
    msg = f"the command exited {proc.returncode}" if proc.returncode else ""
    module.exit_json(changed=True, rc=proc.returncode, stdout=stdout, stderr=stderr, failed=proc.returncode != 0,
                     msg=msg)


def run_prune(kind, spec=None):
    """prune: containers, then networks, volumes and images (what the removed containers held is free then)."""
    module = new_module(kind, check_mode=False, spec=spec)
    p = module.params
    engine = engine_for(module)
    result = {}
    try:
        if p["containers"]:
            result["containers"] = engine.containers.prune() if engine.paths.containers.is_dir() else []
        if p["networks"]:
            result["networks"] = engine.networks.prune()
        if p["volumes"]:
            result["volumes"] = engine.volumes.prune(all=p["volumes_all"])["VolumesDeleted"]
        if p["images"]:
            deleted = engine.images.prune(all=p["images_all"])["ImagesDeleted"]
            result["images"] = [d["Deleted"] for d in deleted if "Deleted" in d]
    except IntermodalError as err:
        module.fail_json(msg=str(err), error=type(err).__name__, **result)
    module.exit_json(changed=any(result.values()), **result)
