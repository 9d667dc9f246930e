"""Declarative constraints on method parameters, and one error shape for every method.

Every method class declares what each constructor parameter accepts::

    parameter_constraints: ClassVar[Mapping[str, Constraint]] = {
        "replicates": Interval(int, 0, 10_000),
        "interval_level": Interval(float, 0, 1, closed="neither"),
        "candidate": NoneOr(Text()),
        "seed": Interval(int, 0, None),
    }

:class:`~pollwatch.forensics.base.Method` checks them on every construction
(:func:`validate_parameters`), the command line parses ``-p KEY=VALUE`` through them
(:func:`parse_assignments`, :func:`assign_parameters`) and ``pollwatch methods NAME`` prints
their descriptions, so the rule a user reads is the rule the code applies. A value that breaks
its constraint raises :class:`ParameterError` with one message for every method::

    method 'klimek-fraud-model': parameter 'replicates' must be an integer from 0 to 10000,
    got -3 (see `pollwatch methods klimek-fraud-model` for its parameters)

The scheme follows scikit-learn's parameter validation (``sklearn.utils._param_validation``:
``Interval``, ``StrOptions``, ``validate_parameter_constraints``). Each constraint says whether
a value satisfies it, describes itself in words, gives values that break it (the conformance
suite feeds them to every method) and parses the text form of a value.

This module imports nothing from the rest of forensics (the method base class imports it).
"""

from __future__ import annotations

import difflib
import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import fields, is_dataclass
from typing import Any, Literal

from pollwatch.errors import PollwatchError

__all__ = [
    "Boolean",
    "Constraint",
    "Interval",
    "NoneOr",
    "Options",
    "ParameterError",
    "Text",
    "TupleOf",
    "assign_parameters",
    "parameter_error",
    "parse_assignments",
    "validate_parameters",
]

Closed = Literal["both", "left", "right", "neither"]

#: the words of the text forms of true and false, for ``-p flag=...``
_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})
_NONE_WORDS = frozenset({"none", "null"})


class ParameterError(PollwatchError):
    """A method parameter is unknown or breaks its constraint; names the method and parameter.

    ``method`` is the method's registry name (None when the problem is not one method's, e.g.
    a ``-p`` key that none of several methods takes), ``parameter`` the parameter's name (None
    when the problem is not one parameter's, e.g. an assignment that is not ``KEY=VALUE``).
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        parameter: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.method = method
        self.parameter = parameter
        super().__init__(message, hint=hint)


def _method_name(cls: type[Any]) -> str:
    name = getattr(cls, "name", None)
    return name if isinstance(name, str) else cls.__name__


def _see_methods(method: str) -> str:
    return f"see `pollwatch methods {method}` for its parameters"


def parameter_error(method: str, parameter: str, requirement: str, value: Any) -> ParameterError:
    """The error every method raises for a bad value: ``... must be <requirement>, got <value>``.

    Methods use it for rules that tie parameters together (``alpha_min <= alpha_max``), so those
    read like the per-parameter ones.
    """
    return ParameterError(
        f"method {method!r}: parameter {parameter!r} must be {requirement}, got {value!r}",
        method=method,
        parameter=parameter,
        hint=_see_methods(method),
    )


def _unknown_parameter(method: str, parameter: str, known: Sequence[str]) -> ParameterError:
    close = difflib.get_close_matches(parameter, list(known), n=1)
    listing = ", ".join(known) if known else "none"
    hint = (f"did you mean {close[0]!r}? " if close else "") + f"known: {listing}"
    return ParameterError(
        f"method {method!r}: unknown parameter {parameter!r}",
        method=method,
        parameter=parameter,
        hint=hint,
    )


# --- constraints ------------------------------------------------------------------------------
class Constraint(ABC):
    """What one parameter accepts: a test, its words, values that break it, a text parser."""

    @abstractmethod
    def is_satisfied_by(self, value: Any) -> bool:
        """Whether ``value`` is acceptable (type and range)."""

    @abstractmethod
    def describe(self) -> str:
        """The rule in words, to follow "must be" (e.g. "an integer >= 1")."""

    @abstractmethod
    def invalid_examples(self) -> tuple[Any, ...]:
        """At least one value that breaks the constraint (the conformance suite tries each)."""

    @abstractmethod
    def parse(self, text: str) -> Any:
        """The typed value of ``text`` (``-p key=text``); ValueError when it cannot be read.

        Parsing reads the type only; whether the value is in range is :meth:`is_satisfied_by`'s
        question, so a parsed value out of range gets the same message as one given in code.
        """

    def normalise(self, value: Any) -> Any:
        """The value as the method stores it (a list given for a tuple becomes a tuple)."""
        return value

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.describe()}>"


def _is_integer(value: Any) -> bool:
    # bool is an int subclass in Python, but True is never meant as a count
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return False
    # an integer is finite however large (float() of a huge one overflows)
    return isinstance(value, numbers.Integral) or math.isfinite(float(value))


def _number_text(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class Interval(Constraint):
    """A number between two bounds: ``Interval(int, 1, None)`` is "an integer >= 1".

    ``kind`` is ``int`` (integers only: never a bool, never a float such as ``5.0``) or
    ``float`` (any finite real number, integers included; NaN and infinities never satisfy it).
    ``low`` or ``high`` None leaves that side unbounded. ``closed`` says which ends belong to
    the interval: ``"both"`` (``low <= x <= high``), ``"left"`` (``low <= x < high``),
    ``"right"`` (``low < x <= high``) or ``"neither"`` (``low < x < high``); an unbounded side
    has no end, so ``closed`` only matters where a bound is given.
    """

    def __init__(
        self,
        kind: type[int] | type[float],
        low: float | None,
        high: float | None,
        *,
        closed: Closed = "both",
    ) -> None:
        if kind not in (int, float):
            raise TypeError(f"Interval kind must be int or float, not {kind!r}")
        if closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"Interval closed must be both, left, right or neither: {closed!r}")
        if low is not None and high is not None and low > high:
            raise ValueError(f"Interval low {low} is above high {high}")
        if kind is int and any(b is not None and not _is_integer(b) for b in (low, high)):
            raise ValueError(f"an integer Interval needs integer bounds, not {low!r}, {high!r}")
        self.kind = kind
        self.low = low
        self.high = high
        self.closed = closed

    @property
    def _low_closed(self) -> bool:
        return self.closed in ("both", "left")

    @property
    def _high_closed(self) -> bool:
        return self.closed in ("both", "right")

    def is_satisfied_by(self, value: Any) -> bool:
        if not (_is_integer(value) if self.kind is int else _is_number(value)):
            return False
        if self.low is not None and (
            value < self.low or (value == self.low and not self._low_closed)
        ):
            return False
        return not (
            self.high is not None
            and (value > self.high or (value == self.high and not self._high_closed))
        )

    def describe(self) -> str:
        noun = "an integer" if self.kind is int else "a number"
        low = None if self.low is None else _number_text(self.low)
        high = None if self.high is None else _number_text(self.high)
        if low is None and high is None:
            return noun
        if low is not None and high is not None and self.closed == "both":
            return f"{noun} from {low} to {high}"
        parts = []
        if low is not None:
            parts.append(f"{'>=' if self._low_closed else '>'} {low}")
        if high is not None:
            parts.append(f"{'<=' if self._high_closed else '<'} {high}")
        return f"{noun} {' and '.join(parts)}"

    def invalid_examples(self) -> tuple[Any, ...]:
        examples: list[Any] = []
        # an open end is itself outside; past a closed end lies one unit beyond it
        if self.low is not None:
            low = self.kind(self.low)
            examples.append(low - 1 if self._low_closed else low)
        if self.high is not None:
            high = self.kind(self.high)
            examples.append(high + 1 if self._high_closed else high)
        # the wrong kinds: True is an int to Python but not a count; NaN compares false
        examples.append(True if self.kind is int else math.nan)
        if self.kind is int:
            examples.append(0.5)
        return tuple(examples)

    def parse(self, text: str) -> Any:
        return self.kind(text.strip())


class Options(Constraint):
    """One of a fixed set of values: ``Options("exact", "monte-carlo")``.

    A value matches an option when it is equal and of the same type (so ``True`` never matches
    the option ``1``).
    """

    def __init__(self, *values: Any) -> None:
        if not values:
            raise ValueError("Options needs at least one value")
        self.values = tuple(values)

    def is_satisfied_by(self, value: Any) -> bool:
        return any(type(value) is type(option) and value == option for option in self.values)

    def describe(self) -> str:
        listing = ", ".join(repr(option) for option in self.values)
        return f"{self.values[0]!r}" if len(self.values) == 1 else f"one of {listing}"

    def invalid_examples(self) -> tuple[Any, ...]:
        # longer than every option, so equal to none of them
        return ("|".join(str(option) for option in self.values) + "?", None)

    def parse(self, text: str) -> Any:
        for option in self.values:
            if str(option) == text.strip():
                return option
        raise ValueError(f"{text!r} is not {self.describe()}")


class Boolean(Constraint):
    """``True`` or ``False`` (only a real bool: not 1, not "yes").

    Its text form is true/false, yes/no, on/off or 1/0, in any case.
    """

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, bool)

    def describe(self) -> str:
        return "true or false"

    def invalid_examples(self) -> tuple[Any, ...]:
        return ("yes", 1, None)

    def parse(self, text: str) -> bool:
        word = text.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        raise ValueError(f"{text!r} is not true or false")


class Text(Constraint):
    """A non-empty string (a candidate's name, a column, a keyword such as ``"leader"``)."""

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, str) and bool(value.strip())

    def describe(self) -> str:
        return "a non-empty text"

    def invalid_examples(self) -> tuple[Any, ...]:
        return ("", 0)

    def parse(self, text: str) -> str:
        if not text.strip():
            raise ValueError("empty text")
        return text


class NoneOr(Constraint):
    """None, or a value that satisfies ``constraint``: ``NoneOr(Text())`` for an optional name.

    Its text form is ``none`` (or ``null``), or the text form of ``constraint``.
    """

    def __init__(self, constraint: Constraint) -> None:
        self.constraint = constraint

    def is_satisfied_by(self, value: Any) -> bool:
        return value is None or self.constraint.is_satisfied_by(value)

    def describe(self) -> str:
        return f"{self.constraint.describe()}, or none"

    def invalid_examples(self) -> tuple[Any, ...]:
        return tuple(v for v in self.constraint.invalid_examples() if v is not None)

    def parse(self, text: str) -> Any:
        if text.strip().lower() in _NONE_WORDS:
            return None
        return self.constraint.parse(text)

    def normalise(self, value: Any) -> Any:
        return None if value is None else self.constraint.normalise(value)


class TupleOf(Constraint):
    """A tuple (or list) of at least ``min_length`` values, each satisfying ``item``.

    A list is stored as a tuple. A string is never a sequence of values here. The text form is
    comma-separated, optionally in brackets: ``0.005,0.01`` or ``(0.005, 0.01)``.
    """

    def __init__(self, item: Constraint, *, min_length: int = 1) -> None:
        if min_length < 0:
            raise ValueError(f"TupleOf min_length must be >= 0, not {min_length}")
        self.item = item
        self.min_length = min_length

    def is_satisfied_by(self, value: Any) -> bool:
        return (
            isinstance(value, tuple | list)
            and len(value) >= self.min_length
            and all(self.item.is_satisfied_by(v) for v in value)
        )

    def describe(self) -> str:
        count = {0: "any number of values", 1: "one or more values"}.get(
            self.min_length, f"{self.min_length} or more values"
        )
        return f"{count}, each {self.item.describe()}"

    def invalid_examples(self) -> tuple[Any, ...]:
        examples: list[Any] = [(self.item.invalid_examples()[0],), "text"]
        if self.min_length > 0:
            examples.insert(0, ())
        return tuple(examples)

    def parse(self, text: str) -> tuple[Any, ...]:
        inner = text.strip()
        if inner[:1] in "([" and inner[-1:] in ")]" and inner:
            inner = inner[1:-1]
        parts = [p for p in (part.strip() for part in inner.split(",")) if p]
        return tuple(self.item.parse(part) for part in parts)

    def normalise(self, value: Any) -> Any:
        return tuple(self.item.normalise(v) for v in value)


# --- validation -------------------------------------------------------------------------------
def _known_parameters(cls: type[Any]) -> list[str]:
    """The constructor parameters of a method class: its dataclass fields, else its constraints."""
    if is_dataclass(cls):
        return [f.name for f in fields(cls)]
    return list(getattr(cls, "parameter_constraints", {}))


def validate_parameters(cls: type[Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``values`` against ``cls.parameter_constraints``; the values as the method stores them.

    Raises :class:`ParameterError` for a name the constructor does not take ("unknown parameter",
    with the closest known name) and for a value that breaks its constraint ("must be ...").
    A parameter without a constraint passes unchecked here; the conformance suite
    (:mod:`pollwatch.testing`) fails a method that leaves one out.
    """
    method = _method_name(cls)
    known = _known_parameters(cls)
    constraints: Mapping[str, Constraint] = getattr(cls, "parameter_constraints", {})
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if name not in known:
            raise _unknown_parameter(method, name, known)
        constraint = constraints.get(name)
        if constraint is None:
            checked[name] = value
            continue
        if not constraint.is_satisfied_by(value):
            raise parameter_error(method, name, constraint.describe(), value)
        checked[name] = constraint.normalise(value)
    return checked


def _split_assignment(item: str, method: str | None) -> tuple[str, str]:
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        where = f"method {method!r}: " if method is not None else "-p "
        raise ParameterError(
            f"{where}{item!r} is not KEY=VALUE", method=method, hint="e.g. -p replicates=200"
        )
    return key.strip(), text.strip()


def _parse_one(cls: type[Any], key: str, text: str) -> Any:
    method = _method_name(cls)
    known = _known_parameters(cls)
    if key not in known:
        raise _unknown_parameter(method, key, known)
    constraint = getattr(cls, "parameter_constraints", {}).get(key)
    if constraint is None:
        raise ParameterError(
            f"method {method!r}: parameter {key!r} declares no constraint, so it cannot be set "
            "from text",
            method=method,
            parameter=key,
            hint="the method's class must list it in parameter_constraints",
        )
    try:
        return constraint.parse(text)
    except ValueError:
        raise parameter_error(method, key, constraint.describe(), text) from None


def parse_assignments(cls: type[Any], assignments: Sequence[str]) -> dict[str, Any]:
    """``["replicates=50", "candidate=none"]`` as validated, typed values for ``cls``.

    Each value is read by its constraint's :meth:`~Constraint.parse`, then checked by
    :func:`validate_parameters`; a key given twice takes its last value.
    """
    method = _method_name(cls)
    parsed: dict[str, Any] = {}
    for item in assignments:
        key, text = _split_assignment(item, method)
        parsed[key] = _parse_one(cls, key, text)
    return validate_parameters(cls, parsed)


def assign_parameters(
    methods: Mapping[str, type[Any]], assignments: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Spread ``-p`` assignments over the selected ``methods`` (name -> class).

    ``NAME.KEY=VALUE`` sets ``KEY`` of method ``NAME`` only, which must be selected. A plain
    ``KEY=VALUE`` sets ``KEY`` of every selected method that takes it, and is an error when none
    does. A method-specific assignment wins over a plain one. Returns the validated values by
    method name (methods without assignments are left out).
    """
    selected = list(methods)
    if assignments and not selected:
        raise ParameterError("-p was given but no method is selected", hint="select one with -m")
    plain: list[tuple[str, str]] = []
    targeted: list[tuple[str, str, str]] = []
    for item in assignments:
        key, text = _split_assignment(item, selected[0] if len(selected) == 1 else None)
        name, dot, parameter = key.rpartition(".")
        if dot:
            if name not in methods:
                raise ParameterError(
                    f"-p {item!r}: method {name!r} is not among the methods selected "
                    f"({', '.join(selected)})",
                    method=name,
                    parameter=parameter,
                    hint=f"select it with -m {name}, or drop the '{name}.' prefix",
                )
            targeted.append((name, parameter, text))
        else:
            plain.append((key, text))
    parsed: dict[str, dict[str, Any]] = {}
    for key, text in plain:
        takers = [n for n, cls in methods.items() if key in _known_parameters(cls)]
        if not takers:
            if len(selected) == 1:
                raise _unknown_parameter(selected[0], key, _known_parameters(methods[selected[0]]))
            every = sorted({p for cls in methods.values() for p in _known_parameters(cls)})
            close = difflib.get_close_matches(key, every, n=1)
            raise ParameterError(
                f"-p {key}={text}: none of the selected methods ({', '.join(selected)}) has a "
                f"parameter {key!r}",
                parameter=key,
                hint=(f"did you mean {close[0]!r}? " if close else "")
                + "see `pollwatch methods NAME` for each method's parameters",
            )
        for name in takers:
            parsed.setdefault(name, {})[key] = _parse_one(methods[name], key, text)
    for name, key, text in targeted:
        parsed.setdefault(name, {})[key] = _parse_one(methods[name], key, text)
    return {name: validate_parameters(methods[name], values) for name, values in parsed.items()}
