"""slurmsky.record behaves as the @dataclass(frozen=True) classes it replaced."""

import dataclasses

import pytest

from slurmsky.record import Factory, Record


class Point(Record):
    x: int
    y: int = 0
    tags: list = Factory(list)
    secret: str = "s"
    _norepr = ("secret",)


@dataclasses.dataclass(frozen=True)
class DPoint:
    x: int
    y: int = 0
    tags: list = dataclasses.field(default_factory=list)
    secret: str = dataclasses.field(default="s", repr=False)


class Bag(Record, frozen=False):
    items: list = Factory(list)


def test_construction_defaults_and_factories():
    p = Point(1)
    assert (p.x, p.y, p.tags, p.secret) == (1, 0, [], "s")
    assert Point(1, 2, ["a"]).tags == ["a"] and Point(x=1, y=3).y == 3
    assert Point(1).tags is not Point(1).tags
    assert Point._fields == ("x", "y", "tags", "secret")


def test_bad_arguments_are_type_errors():
    for args, kwargs in [((), {}), ((1, 2, [], "s", 5), {}), ((1,), {"x": 2}), ((1,), {"z": 2})]:
        with pytest.raises(TypeError):
            Point(*args, **kwargs)


def test_equality_hash_and_repr_as_a_dataclass():
    assert Point(1, 2) == Point(1, 2) and Point(1, 2) != Point(1, 3)
    assert Point(1) != DPoint(1)  # another class is never equal
    assert hash(Point(1, 2, ())) == hash(Point(1, 2, ()))
    assert repr(Point(1, 2)) == repr(DPoint(1, 2)).replace("DPoint", "Point")


def test_frozen_and_replace():
    p = Point(1)
    with pytest.raises(AttributeError):
        p.x = 2
    with pytest.raises(AttributeError):
        del p.x
    q = p.replace(y=5)
    assert (q.x, q.y, p.y) == (1, 5, 0) and type(q) is Point


def test_mutable_records_are_unhashable():
    b = Bag()
    b.items = [1]
    assert b == Bag([1])
    with pytest.raises(TypeError):
        hash(b)
