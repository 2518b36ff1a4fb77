"""intermodal: a daemonless container engine.

Importing the package does no work: every submodule is imported where it is
used, so `imod` and each Ansible task pay only for what they touch.
"""

__version__ = "0.1.0"
