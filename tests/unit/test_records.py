"""intermodal.records: the plain record classes that stand in for dataclasses (pure)."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from intermodal.records import Frozen, Mutable, factory, fields, is_record, replace


class Point(Frozen):
    x: int
    y: int = 0
    tags: list = factory(list)


class Point3(Point):
    z: int = 0


class Box(Mutable):
    name: str
    items: list = factory(list)


def test_init_positional_keyword_and_defaults():
    assert (Point(1).x, Point(1).y) == (1, 0)
    p = Point(1, 2, ["a"])
    assert (p.x, p.y, p.tags) == (1, 2, ["a"])
    q = Point(y=5, x=4)
    assert (q.x, q.y) == (4, 5)


def test_factory_makes_a_fresh_default_per_instance():
    a, b = Point(1), Point(2)
    assert a.tags == [] and b.tags == []
    assert a.tags is not b.tags
    assert "tags" not in Point.__dict__  # the factory is no class attribute to share


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    ((), {}, "missing required argument: 'x'"),
    ((1, 2, [], 4), {}, "takes 3 arguments but 4 were given"),
    ((1,), {"x": 2}, "multiple values for argument 'x'"),
    ((1,), {"w": 2}, "unexpected keyword argument 'w'"),
])
def test_init_errors_as_a_dataclass_would_raise(args, kwargs, message):
    with pytest.raises(TypeError, match=message):
        Point(*args, **kwargs)


def test_equality_and_hash():
    assert Point(1, 2) == Point(1, 2)
    assert Point(1, 2) != Point(1, 3)
    assert Point(1, 2, []) != Point3(1, 2, [])  # another class is never equal, as with dataclasses
    assert Point(1, 2) != (1, 2, [])
    frozen = Point(1, 2, ())
    assert hash(frozen) == hash(Point(1, 2, ()))
    assert len({frozen, Point(1, 2, ())}) == 1
    with pytest.raises(TypeError, match="unhashable"):
        hash(Box("b"))
    assert Box("b", [1]) == Box("b", [1])


def test_frozen_refuses_assignment_and_deletion():
    p = Point(1)
    with pytest.raises(dataclasses.FrozenInstanceError, match="'x'"):
        p.x = 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        del p.y
    assert p.x == 1


def test_mutable_allows_assignment():
    b = Box("b")
    b.name = "c"
    b.items.append(1)
    assert b == Box("c", [1])


def test_repr_names_every_field():
    assert repr(Point(1, 2, [])) == "Point(x=1, y=2, tags=[])"
    assert repr(Point3(1)) == "Point3(x=1, y=0, tags=[], z=0)"


def test_replace_copies_with_changes():
    p = Point(1, 2, ["t"])
    q = replace(p, y=7)
    assert (q.x, q.y, q.tags) == (1, 7, ["t"])
    assert p.y == 2 and type(q) is Point
    with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
        replace(p, nope=1)


def test_fields_in_declaration_order_subclass_fields_last():
    assert fields(Point) == ("x", "y", "tags")
    assert fields(Point3(1)) == ("x", "y", "tags", "z")
    p3 = Point3(1, 2, [], 3)
    assert (p3.x, p3.y, p3.z) == (1, 2, 3)


def test_a_subclass_may_change_an_inherited_default():
    class Origin(Point):
        x: int = 0

    assert fields(Origin) == ("x", "y", "tags")
    assert Origin().x == 0
    with pytest.raises(TypeError, match="missing required argument: 'x'"):
        Point()  # the parent's field stays required


def test_is_record():
    assert is_record(Point(1)) and is_record(Box("b"))
    assert not is_record(Point)  # a class is no record instance, as dataclasses.is_dataclass on instances
    assert not is_record({"x": 1})


def test_copy_and_pickle_keep_the_record():
    p = Point3(1, 2, ("t",), 3)
    assert copy.copy(p) == p and copy.deepcopy(p) == p
    assert pickle.loads(pickle.dumps(p)) == p
    with pytest.raises(dataclasses.FrozenInstanceError):
        copy.deepcopy(p).x = 5


def test_to_plain_is_marshalled_and_from_plain_gives_the_records_back() -> None:
    import marshal

    from intermodal.records import from_plain, to_plain
    from intermodal.runtime import init
    from intermodal.runtime.spec import parse

    spec = parse({"ociVersion": "1.0.2", "root": {"path": "rootfs"},
                  "process": {"args": ["sh", "-c", "..."], "cwd": "/", "user": {"uid": 1, "gid": 2},
                              "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 5, "hard": 6}],
                              "capabilities": {"bounding": ["CAP_KILL"]}},
                  "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}],
                            "resources": {"memory": {"limit": 1 << 20}}}})
    ctx = init.Context(mode="create", spec=spec, process=spec.process, bundle="/b", rootfs="/b/rootfs",
                       namespaces=spec.linux.namespaces, sock=-1, cgroup_paths={"pids": "/sys/fs/cgroup/pids/x"},
                       stdio=(1, 2, 3), state_json=b"{}", seccomp=(b"\x00" * 8, 1))
    back = from_plain(marshal.loads(marshal.dumps(to_plain(ctx))))
    assert type(back) is init.Context
    assert back == ctx
    assert back.spec.process.rlimits == ctx.spec.process.rlimits
    assert isinstance(back.namespaces, tuple) and back.stdio == (1, 2, 3)


def test_from_plain_refuses_what_is_no_record_class() -> None:
    from intermodal.records import from_plain

    with pytest.raises(TypeError, match="not a record class"):
        from_plain((..., "os:getcwd", ()))
