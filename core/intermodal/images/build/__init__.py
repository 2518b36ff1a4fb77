"""`imod build`: images from a Dockerfile (Containerfile), step by step, with a layer cache.

`executor.build(manager, BuildOptions(...))` is the entry point; the
parser (`dockerfile.py`), variable expansion (`words.py`), the context and
its ignore file (`context.py`), the filesystem steps (`steps.py`, `diff.py`)
and the cache (`cache.py`) are imported only by a build.
"""
