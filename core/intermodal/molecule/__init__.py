"""The Molecule driver `intermodal`: scenario instances are intermodal containers.

`driver.py` is the plugin Molecule finds through the `molecule.driver` entry
point; `playbooks/create.yml` and `playbooks/destroy.yml` make and remove the
instances with the collection's modules, and Ansible reaches them through the
`intermodal.containers.imod` connection plugin. Nothing here is imported by
the engine or `imod`.
"""
