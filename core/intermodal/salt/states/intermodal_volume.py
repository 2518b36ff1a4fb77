"""State `intermodal_volume`: present and absent.

Arguments are docker_volume's (`driver`, `driver_opts`, `labels`, `force`).
Options left out are not managed. A declared option that differs would
recreate the volume and destroy its content, so that happens only with
`force` (community.docker's `recreate: options-changed`); without it the
state fails and says so.

.. code-block:: yaml

    data:
      intermodal_volume.present:
        - labels: {app: web}
"""

from __future__ import annotations

__virtualname__ = "intermodal_volume"


def __virtual__():
    if "intermodal.version" in __salt__:  # noqa: F821 - injected by Salt's loader
        return __virtualname__
    return (False, __salt__.missing_fun_string("intermodal.version"))  # noqa: F821


def _converge(name, state, root, kwargs):
    from intermodal.declare import volume
    from intermodal.errors import IntermodalError
    from intermodal.salt.common import engine_for, failure, state_return, volume_options

    test = bool(__opts__.get("test"))  # noqa: F821
    try:
        engine = engine_for(root, __salt__["config.get"])  # noqa: F821
        declared = volume.declare(volume_options(name, kwargs, state=state))
        the_plan = volume.plan(declared, volume.read(engine, declared.name))
        if not the_plan.changed and the_plan.differences:
            # Differences the planner will not act on (recreating destroys the content): a failure to converge.
            return failure(name, " ".join(the_plan.warnings) + " (with Salt: set force to True).",
                           plan=the_plan.to_data())
        if not test:
            volume.apply(engine, declared, the_plan)
    except IntermodalError as err:
        return failure(name, str(err))
    return state_return(name, "Volume", the_plan, test=test)


def present(name, driver=None, driver_opts=None, labels=None, force=False, root=None, **kwargs):
    """The volume exists; *force* recreates it (destroying its content) when a declared option differs."""
    return _converge(name, "present", root, {**kwargs, "driver": driver, "driver_opts": driver_opts,
                                             "labels": labels, "force": force})


def absent(name, driver=None, root=None, **kwargs):
    """The volume does not exist (the engine refuses while a container uses it)."""
    return _converge(name, "absent", root, kwargs)
