"""Value classes without dataclasses, for the modules sbatch imports on every call.

``dataclasses`` imports ``inspect`` (and with it ast, dis, tokenize...), and each
``@dataclass`` compiles its methods with exec: together ~15 ms of every sbatch.  A
``Record`` subclass declares its fields as annotations, in order (a base class's first),
and a class attribute of a field's name is its default (``Factory(f)`` calls ``f()`` for
each instance).  Instances behave as a ``@dataclass(frozen=True)`` of the same fields:
positional or keyword construction, equality field by field within one class, a hash by
value, the same repr (fields named in ``_norepr`` left out), and assignment refused;
``frozen=False`` in the class statement makes them mutable and unhashable, like a plain
``@dataclass``.  ``replace`` is ``dataclasses.replace``.
"""

from __future__ import annotations

# For the type checker only: typing is not imported here at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Self, TypeVar, dataclass_transform

    _T = TypeVar("_T")
else:

    def dataclass_transform(**kwargs):
        return lambda cls: cls


if TYPE_CHECKING:

    def Factory(make: Callable[[], _T]) -> _T:
        """To the checker, a field's ``= Factory(f)`` is a default of ``f()``'s type (as
        ``= field(default_factory=f)`` is for a dataclass)."""
        ...
else:

    class Factory:
        """A default made afresh for each instance: ``Factory(dict)``."""

        __slots__ = ("make",)

        def __init__(self, make):
            self.make = make


@dataclass_transform(frozen_default=True)
class Record:
    """Subclasses are checked as dataclasses (``dataclass_transform``): their fields,
    generated ``__init__`` and frozenness (``frozen=False`` in the class statement)."""

    _fields: tuple[str, ...] = ()
    _defaults: dict = {}
    _norepr: tuple[str, ...] = ()
    _frozen = True

    def __init_subclass__(cls, frozen: bool = True, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        fields = list(cls._fields)
        fields.extend(n for n in cls.__dict__.get("__annotations__", {}) if n not in fields)
        cls._fields = tuple(fields)
        cls._defaults = {n: getattr(cls, n) for n in fields if hasattr(cls, n)}
        cls._frozen = frozen
        if not frozen:
            # None marks a class unhashable (the data model's rule), which mypy doesn't model
            cls.__hash__ = None  # type: ignore[assignment,method-assign]

    def __init__(self, *args: Any, **kwargs: Any):
        fields = self._fields
        if len(args) > len(fields):
            raise TypeError(
                f"{type(self).__name__}() takes {len(fields)} positional arguments"
                f" but {len(args)} were given"
            )
        given = dict(zip(fields, args))
        for name, value in kwargs.items():
            if name not in fields:
                raise TypeError(
                    f"{type(self).__name__}() got an unexpected keyword argument {name!r}"
                )
            if name in given:
                raise TypeError(
                    f"{type(self).__name__}() got multiple values for argument {name!r}"
                )
            given[name] = value
        values = self.__dict__
        for name in fields:
            if name in given:
                values[name] = given[name]
            elif name in self._defaults:
                default = self._defaults[name]
                values[name] = default.make() if type(default) is Factory else default
            else:
                raise TypeError(f"{type(self).__name__}() missing required argument: {name!r}")

    def __setattr__(self, name, value):
        if self._frozen:
            raise AttributeError(f"cannot assign to field {name!r}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        if self._frozen:
            raise AttributeError(f"cannot delete field {name!r}")
        object.__delattr__(self, name)

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __hash__(self):
        return hash(tuple(self.__dict__.values()))

    def __repr__(self):
        values = self.__dict__
        shown = ", ".join(f"{n}={values[n]!r}" for n in self._fields if n not in self._norepr)
        return f"{type(self).__qualname__}({shown})"

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` (``dataclasses.replace``)."""
        return type(self)(**{**self.__dict__, **changes})
