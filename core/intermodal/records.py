"""Plain record classes: what dataclasses gave us, without importing dataclasses.

Every container start imports the runtime in the monitor's launcher, and
``dataclasses`` (with ``inspect`` and ``ast``) plus the code it generates per
class cost that launcher ~15 ms of CPU. A record declares its fields as
annotations with optional defaults (``factory(...)`` for a fresh default per
instance); it gets ``__init__`` (positional or keyword), ``__eq__``,
``__repr__`` and, when frozen, ``__hash__`` and dataclasses'
``FrozenInstanceError`` on assignment, like a ``@dataclass(frozen=True)``.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing` (~3 ms): the monitor's launcher imports this for every start
if TYPE_CHECKING:
    from typing import Any


class factory:
    """A default made anew for each instance."""

    __slots__ = ("make",)

    def __init__(self, make: Any) -> None:
        self.make = make


class Frozen:
    """An immutable record; its fields are the class's own annotations, in order."""

    _fields: tuple[str, ...] = ()
    _defaults: dict[str, Any] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields = list(cls._fields)
        defaults = dict(cls._defaults)
        for name in cls.__dict__.get("__annotations__", {}):  # noqa: RUF063  (own ones only, as strings)
            if name not in fields:
                fields.append(name)
            if name in cls.__dict__:
                defaults[name] = cls.__dict__[name]
                if isinstance(defaults[name], factory):
                    delattr(cls, name)
        cls._fields, cls._defaults = tuple(fields), defaults

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        if len(args) > len(cls._fields):
            raise TypeError(f"{cls.__name__}() takes {len(cls._fields)} arguments but {len(args)} were given")
        values = dict(zip(cls._fields, args, strict=False))  # fewer arguments than fields: defaults
        for name, value in kwargs.items():
            if name not in cls._fields:
                raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {name!r}")
            if name in values:
                raise TypeError(f"{cls.__name__}() got multiple values for argument {name!r}")
            values[name] = value
        for name in cls._fields:
            if name in values:
                value = values[name]
            elif name in cls._defaults:
                value = cls._defaults[name]
                if isinstance(value, factory):
                    value = value.make()
            else:
                raise TypeError(f"{cls.__name__}() missing required argument: {name!r}")
            object.__setattr__(self, name, value)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__qualname__}({inner})"

    def __setattr__(self, name: str, value: Any) -> None:
        _frozen(name)

    def __delattr__(self, name: str) -> None:
        _frozen(name)


class Mutable(Frozen):
    """A record whose fields may change (as a plain ``@dataclass``: not hashable)."""

    __hash__ = None  # type: ignore[assignment]

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        object.__delattr__(self, name)


def fields(record: Frozen | type[Frozen]) -> tuple[str, ...]:
    """The field names of a record or record class, in order (as ``dataclasses.fields``, names only)."""
    return record._fields


def is_record(value: object) -> bool:
    """Whether *value* is a record instance (as ``dataclasses.is_dataclass`` on an instance)."""
    return isinstance(value, Frozen)


def replace(record: Frozen, **changes: Any) -> Any:
    """A copy of *record* with *changes* (as ``dataclasses.replace``)."""
    values = {name: getattr(record, name) for name in record._fields}
    values.update(changes)
    return type(record)(**values)


def to_plain(value: Any) -> Any:
    """*value* with every record in it as ``(..., "module:qualname", (field values))``: what `marshal`
    writes (it has no classes, and no JSON-born value is Ellipsis). `from_plain` undoes it. The
    runtime hands a staged process its context so: `pickle` costs the launcher ~4 ms of imports."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if isinstance(value, Frozen):
        return (..., f"{kind.__module__}:{kind.__qualname__}", tuple(to_plain(getattr(value, n)) for n in kind._fields))
    if kind is tuple:
        return value if all(type(v) in _SCALARS for v in value) else tuple(to_plain(v) for v in value)
    if kind is list:
        return [to_plain(v) for v in value]
    if kind is dict:
        return {k: to_plain(v) for k, v in value.items()}
    return value  # marshal says whether it can write it


def from_plain(value: Any) -> Any:
    """The values `to_plain` was given; a record's class is looked up in its (imported) module."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is tuple:
        if value and value[0] is Ellipsis:
            return _rebuild(_record_class(value[1]), [from_plain(v) for v in value[2]])
        return value if all(type(v) in _SCALARS for v in value) else tuple(from_plain(v) for v in value)
    if kind is list:
        return [from_plain(v) for v in value]
    if kind is dict:
        return {k: from_plain(v) for k, v in value.items()}
    return value


_SCALARS = frozenset((str, int, float, bool, bytes, type(None)))


def _rebuild(cls: type[Frozen], values: list[Any]) -> Frozen:
    """The record *values* came from (to_plain wrote every field): no __init__ to check them again."""
    if len(values) != len(cls._fields):
        raise TypeError(f"{cls.__qualname__} has {len(cls._fields)} fields, not {len(values)}")
    record = object.__new__(cls)
    for name, value in zip(cls._fields, values, strict=True):
        object.__setattr__(record, name, value)
    return record


def _record_class(name: str) -> type[Frozen]:
    import sys

    module, _, qualname = name.partition(":")
    if module not in sys.modules:
        __import__(module)
    found: Any = sys.modules[module]
    for part in qualname.split("."):
        found = getattr(found, part)
    if not (isinstance(found, type) and issubclass(found, Frozen)):
        raise TypeError(f"{name} is not a record class")
    return found


def _frozen(name: str) -> None:
    from dataclasses import FrozenInstanceError  # only on the error

    raise FrozenInstanceError(f"cannot assign to field {name!r}")
