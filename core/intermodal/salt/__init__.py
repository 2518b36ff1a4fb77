"""`intermodal.salt`: the Salt extension (execution module `intermodal`, states `intermodal_*`).

Salt finds it through the `salt.loader` entry points in pyproject.toml
(`module_dirs`, `states_dirs` in `loader`), so `pip install intermodal[salt]`
is all a minion needs; nothing is copied into `_modules` or `_states`.

    modules/intermodal_mod.py   the execution module `intermodal` (pull, run, ps, ...)
    states/intermodal_*.py      the states, each a screenful over `intermodal.declare`
    common.py                   what they share: the engine root, Salt's docker argument
                                names mapped onto the planner's, a plan as a state return

The engine root: a function's or state's `root` argument, else the minion
option (or pillar key) `intermodal.root` (config.get), else the engine's
default (`IMOD_ROOT` or /var/lib/intermodal).
"""
