"""State `intermodal_network`: present (with `containers` connected) and absent.

Arguments are docker_network's (`driver`, `driver_opts`, `subnet`,
`gateway`, `iprange`, `ipam_pools`, `internal`, `labels`, `containers`) or
community.docker's. Options left out are the engine's choice and never
compared (an engine-picked subnet is no drift); a declared option that
differs recreates the network.

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


def _converge(name, state, root, kwargs):
    from intermodal.declare import network
    from intermodal.errors import IntermodalError
    from intermodal.salt.common import engine_for, failure, network_options, state_return

    test = bool(__opts__.get("test"))  # noqa: F821
    try:
        engine = engine_for(root, __salt__["config.get"])  # noqa: F821
        declared = network.declare(network_options(name, kwargs, state=state))
        the_plan = network.plan(declared, network.read(engine, declared.name),
                                **network.read_attached(engine, declared))
        if not test:
            network.apply(engine, declared, the_plan)
    except IntermodalError as err:
        return failure(name, str(err))
    return state_return(name, "Network", the_plan, test=test)


def present(name, root=None, **kwargs):
    """The network exists as declared; *containers* (running ones) are connected to it."""
    return _converge(name, "present", root, kwargs)


def absent(name, root=None, **kwargs):
    """The network does not exist (the engine refuses while containers use it)."""
    return _converge(name, "absent", root, kwargs)


def mod_watch(name, sfun=None, **kwargs):
    from intermodal.salt.common import failure

    return failure(name, f"watch requisite is not implemented for {sfun}")
