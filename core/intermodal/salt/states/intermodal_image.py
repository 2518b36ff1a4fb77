"""State `intermodal_image`: present (pull, build, load; force) and absent.

Arguments are docker_image's (`build`, `load`, `force`, `tag`, `dockerfile`,
`buildargs`, `insecure_registry`) or community.docker's (`source`,
`load_path`, ...). An image is judged by its id: a forced pull or load that
gives the id the name already has is no change, and `test=True` predicts
that from the registry's or the archive's manifest without fetching layers.

.. code-block:: yaml

    busybox:1.36:
      intermodal_image.present: []
    app:1:
      intermodal_image.present:
        - build: /srv/app
"""

from __future__ import annotations

__virtualname__ = "intermodal_image"


def __virtual__():
    if "intermodal.version" in __salt__:  # noqa: F821 - injected by Salt's loader
        return __virtualname__
    return (False, __salt__.missing_fun_string("intermodal.version"))  # noqa: F821


def _converge(name, state, root, kwargs):
    from intermodal.declare import image
    from intermodal.errors import IntermodalError
    from intermodal.salt.common import engine_for, failure, image_options, state_return

    test = bool(__opts__.get("test"))  # noqa: F821
    try:
        engine = engine_for(root, __salt__["config.get"])  # noqa: F821
        declared = image.declare(image_options(name, kwargs, state=state))
        the_plan = image.plan(declared, image.read(engine, declared))
        if test or not the_plan.changed:
            return state_return(name, "Image", the_plan, test=test)
        before = engine.images.get(declared.name).id if engine.images.exists(declared.name) else None
        changed, after = image.apply(engine, declared, the_plan)
    except IntermodalError as err:
        return failure(name, str(err))
    # The id before and after, whatever the plan guessed (a build's id is known only once built).
    extra = {"id": {"old": before, "new": after}} if state == "present" and before != after else {}
    return state_return(name, "Image", the_plan, test=False, changed=changed, extra=extra)


def present(name, tag=None, build=None, load=None, force=False, root=None, **kwargs):
    """The image is present: pulled (the default), built from *build* (a context directory, or
    community.docker's build dict) or loaded from the archive *load*. *force*: pull, build or load again
    (a change only if the id moves).
    """
    return _converge(name, "present", root, {**kwargs, "tag": tag, "build": build, "load": load,
                                              "force": force or None})


def absent(name, images=None, force=False, root=None, **kwargs):
    """The image (or each of *images*) is not present; *force* removes it even if other tags name it."""
    if images:
        rets = [_converge(n, "absent", root, {**kwargs, "force": force or None}) for n in images]
        return {"name": name, "result": all(r["result"] is not False for r in rets) and (
                    None if any(r["result"] is None for r in rets) else True),
                "changes": {r["name"]: r["changes"] for r in rets if r["changes"]},
                "comment": " ".join(r["comment"] for r in rets)}
    return _converge(name, "absent", root, {**kwargs, "force": force or None})


def mod_watch(name, sfun=None, **kwargs):
    """A `watch` that fired: present pulls, builds or loads again (a change only if the id moves)."""
    from intermodal.salt.common import clean, failure

    if sfun == "present":
        return present(name, **{**clean(kwargs), "force": True})
    return failure(name, f"watch requisite is not implemented for {sfun}")
