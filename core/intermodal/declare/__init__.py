"""`intermodal.declare`: the one planner shared by the Ansible collection and the Salt states.

A declaration (what the user wants) and what the engine has are normalised
into one typed form and compared option by option; the result is a `Plan`,
a pure value computed before anything runs. Front ends show the plan (check
mode, `test=True`) or hand it to `apply`. Nothing here knows of Ansible or
Salt: options are plain names and values (community.docker's names, listed
with their types in `options`), errors are `intermodal.errors`.

Every resource module has the same shape::

    from intermodal.declare import volume           # image, network, volume, container
    declared = volume.declare({"name": "data", "labels": {"a": "1"}})   # InvalidArgument
    plan = volume.plan(declared, volume.read(engine, "data"))           # pure once read
    plan.actions, plan.differences, plan.warnings, plan.before_after()  # old/new for Salt's changes
    if not test:
        volume.apply(engine, declared, plan)

Containers and images read more than one record, so their modules offer
`make_plan(engine, declared)` / `read(engine, declared)`, and their `apply`
returns whether anything moved (a pull that yields the same image id is no
change).
"""
