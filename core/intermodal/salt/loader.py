"""Salt's `salt.loader` entry points (old style: the entry point's name is the loader's `<tag>_dirs`).

Salt calls these for every loader it builds, so this module imports nothing
beyond the standard library.
"""

from __future__ import annotations

import os

HERE = os.path.dirname(os.path.abspath(__file__))


def module_dirs() -> list[str]:
    """Where Salt finds the execution module `intermodal`."""
    return [os.path.join(HERE, "modules")]


def states_dirs() -> list[str]:
    """Where Salt finds the states intermodal_image, intermodal_container, intermodal_network, intermodal_volume."""
    return [os.path.join(HERE, "states")]
