"""`intermodal.declare`: the one planner shared by the Ansible collection and the Salt states.

A declaration (what the user wants) and what the engine has are normalised
into one typed form and compared option by option; the result is a `Plan`,
a pure value computed before anything runs. Front ends show the plan (check
mode, `test=True`) or hand it to `apply`. Nothing here knows of Ansible or
Salt: options are plain names and values, errors are `intermodal.errors`.
"""
