"""The EventBridge content-filtering language: parsing, validation and leaf matchers.

A pattern (an EventBridge event pattern or an SNS filter policy) compiles into
:class:`Compiled`: a list of *sub-rules* (``$or`` expanded, as Event Ruler does), each a
tuple of :class:`Condition` sorted by field path. A condition holds the leaf matchers of
one field (any may match) and whether the field may also be absent (``exists: false``).

Leaf values of an event are what JSON leaves are in Python: ``str``, ``int`` / ``float``
(never ``bool``), ``bool`` and ``None``. ``_matcher`` decides which leaves a pattern sees.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from ._errors import InvalidPattern

__all__ = ("Compiled", "Condition", "Dialect", "Leaf", "compile_pattern", "literal_key")

Path = tuple[str, ...]
Dialect = Literal["eventbridge", "sns-attributes", "sns-body"]

_OR: Final = "$or"
_MAX_COMBINATIONS: Final = 1000  # EventBridge rejects patterns whose $or expands further
_SNS_NUMBER_LIMIT: Final = 1e9  # SNS accepts numbers from -1e9 to 1e9
_OPERATORS: Final = frozenset(
    {
        "anything-but",
        "cidr",
        "equals-ignore-case",
        "exact",
        "exists",
        "numeric",
        "prefix",
        "suffix",
        "wildcard",
    }
)


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def literal_key(value: object) -> str:
    """The JSON spelling of ``true``, ``false`` or ``null``."""
    return "null" if value is None else ("true" if value else "false")


# --------------------------------------------------------------------------- leaf matchers


class Leaf:
    """One matcher of a field's value list. ``kind`` tells the compiled matcher how to index it."""

    __slots__ = ()
    kind: str = "other"  # "str", "num", "lit" (exact, hashed), "exists", or "other"
    key: Any = None

    def test(self, value: Any) -> bool:
        raise NotImplementedError


class ExactString(Leaf):
    __slots__ = ("key",)
    kind = "str"

    def __init__(self, text: str) -> None:
        self.key = text

    def test(self, value: Any) -> bool:
        return isinstance(value, str) and value == self.key


class ExactNumber(Leaf):
    __slots__ = ("key",)
    kind = "num"

    def __init__(self, number: int | float) -> None:
        self.key = number

    def test(self, value: Any) -> bool:
        return is_number(value) and value == self.key


class ExactLiteral(Leaf):
    __slots__ = ("key",)
    kind = "lit"

    def __init__(self, value: bool | None) -> None:
        self.key = literal_key(value)

    def test(self, value: Any) -> bool:
        return (value is None or isinstance(value, bool)) and literal_key(value) == self.key


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


class ExactAddress(Leaf):
    """An exact string that is an IP address also matches other spellings of that address."""

    __slots__ = ("address", "text")

    def __init__(self, text: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
        self.text = text
        self.address = address

    def test(self, value: Any) -> bool:
        return isinstance(value, str) and (value == self.text or _ip(value) == self.address)


class Exists(Leaf):
    __slots__ = ()
    kind = "exists"

    def test(self, value: Any) -> bool:
        return True


class Prefix(Leaf):
    __slots__ = ("ignore_case", "text")

    def __init__(self, text: str, ignore_case: bool) -> None:
        self.ignore_case = ignore_case
        self.text = text.lower() if ignore_case else text

    def test(self, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        return (value.lower() if self.ignore_case else value).startswith(self.text)


class Suffix(Leaf):
    __slots__ = ("ignore_case", "text")

    def __init__(self, text: str, ignore_case: bool) -> None:
        self.ignore_case = ignore_case
        self.text = text.lower() if ignore_case else text

    def test(self, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        return (value.lower() if self.ignore_case else value).endswith(self.text)


class EqualsIgnoreCase(Leaf):
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text.lower()

    def test(self, value: Any) -> bool:
        return isinstance(value, str) and value.lower() == self.text


class Wildcard(Leaf):
    __slots__ = ("regex",)

    def __init__(self, regex: re.Pattern[str]) -> None:
        self.regex = regex

    def test(self, value: Any) -> bool:
        return isinstance(value, str) and self.regex.fullmatch(value) is not None


class Numeric(Leaf):
    __slots__ = ("high", "high_open", "low", "low_open")

    def __init__(self, low: float, low_open: bool, high: float, high_open: bool) -> None:
        self.low, self.low_open, self.high, self.high_open = low, low_open, high, high_open

    def test(self, value: Any) -> bool:
        if not is_number(value):
            return False
        if value < self.low or (self.low_open and value == self.low):
            return False
        return not (value > self.high or (self.high_open and value == self.high))


class Cidr(Leaf):
    __slots__ = ("network",)

    def __init__(self, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> None:
        self.network = network

    def test(self, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        address = _ip(value)
        return address is not None and address in self.network


class AnythingBut(Leaf):
    """Matches every leaf value except the listed strings, numbers or string forms.

    A value of another type than the listed ones is "anything but" them, so it matches.
    """

    __slots__ = ("form", "values")

    def __init__(self, form: str, values: tuple[Any, ...]) -> None:
        self.form = form
        self.values = values

    def test(self, value: Any) -> bool:
        form = self.form
        if form == "number":
            return not (is_number(value) and value in self.values)
        if not isinstance(value, str):
            return True
        if form == "string":
            return value not in self.values
        if form == "prefix":
            return not any(value.startswith(v) for v in self.values)
        if form == "suffix":
            return not any(value.endswith(v) for v in self.values)
        if form == "equals-ignore-case":
            return value.lower() not in self.values
        return not any(r.fullmatch(value) for r in self.values)  # wildcard


# --------------------------------------------------------------------------- compiled form


@dataclass(frozen=True, slots=True)
class Condition:
    """The constraint a sub-rule puts on one field: a value matching ``leaves``, or absence."""

    path: Path
    leaves: tuple[Leaf, ...]
    absent_ok: bool

    @property
    def name(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class Compiled:
    """A validated pattern: its ``$or`` branches, each a tuple of conditions sorted by name."""

    subrules: tuple[tuple[Condition, ...], ...]
    paths: frozenset[Path]


# --------------------------------------------------------------------------- parsing


class _Parser:
    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.what = "event pattern" if dialect == "eventbridge" else "filter policy"

    def fail(self, where: Path | str, problem: str) -> InvalidPattern:
        place = where if isinstance(where, str) else (".".join(where) or "the top level")
        return InvalidPattern(f"Invalid {self.what} at {place}: {problem}")

    # -- structure ----------------------------------------------------------------

    def parse(self, pattern: Any) -> Compiled:
        if not isinstance(pattern, Mapping):
            raise InvalidPattern(
                f"An {self.what} must be a JSON object of fields, got {_show(pattern)}."
                if self.what == "event pattern"
                else f"A {self.what} must be a JSON object of fields, got {_show(pattern)}."
            )
        rules: list[dict[Path, list[Leaf]]] = []
        self.obj(pattern, (), rules, inside_or=False)
        subrules = []
        paths: set[Path] = set()
        for rule in rules:
            conditions = []
            for path, leaves in rule.items():
                absent_ok = any(isinstance(leaf, _Absent) for leaf in leaves)
                kept = tuple(leaf for leaf in leaves if not isinstance(leaf, _Absent))
                conditions.append(Condition(path, kept, absent_ok))
                paths.add(path)
            conditions.sort(key=lambda c: c.name)
            subrules.append(tuple(conditions))
        return Compiled(tuple(subrules), frozenset(paths))

    def obj(
        self,
        pattern: Mapping[Any, Any],
        path: Path,
        rules: list[dict[Path, list[Leaf]]],
        *,
        inside_or: bool,
    ) -> None:
        if not pattern:
            raise self.fail(path, "empty objects are not allowed; name at least one field.")
        for key, value in pattern.items():
            if not isinstance(key, str):
                raise self.fail(path, f"field names must be strings, got {key!r}.")
            if key == _OR:
                self.either(value, path, rules)
                continue
            here = (*path, key)
            if inside_or and key in _OPERATORS:
                raise self.fail(
                    here,
                    f'"{key}" is an operator, so it cannot be a field name inside "$or"; '
                    f'write it inside a value list: "field": [{{"{key}": ...}}].',
                )
            if isinstance(value, Mapping):
                if self.dialect == "sns-attributes":
                    raise self.fail(
                        here,
                        "a filter policy on message attributes is flat: each attribute takes "
                        "a list of values; nest fields only with scope='MessageBody'.",
                    )
                self.obj(value, here, rules, inside_or=inside_or)
            elif isinstance(value, list | tuple):
                leaves = self.values(value, here)
                if not rules:
                    rules.append({})
                for rule in rules:
                    rule[here] = leaves
            else:
                raise self.fail(
                    here,
                    f"a field must map to a list of values or operators, or to an object of "
                    f"fields, got {_show(value)}; write [{_show(value)}] to match that value.",
                )

    def either(self, value: Any, path: Path, rules: list[dict[Path, list[Leaf]]]) -> None:
        where = (*path, _OR)
        if not isinstance(value, list | tuple):
            raise self.fail(
                where, f'"$or" takes a list of at least two objects, got {_show(value)}.'
            )
        if len(value) < 2:
            raise self.fail(
                where, f'"$or" needs at least two objects to choose from, got {len(value)}.'
            )
        before = [dict(rule) for rule in rules]
        rules.clear()
        for branch in value:
            if not isinstance(branch, Mapping):
                raise self.fail(where, f'each "$or" branch must be an object, got {_show(branch)}.')
            forked = [dict(rule) for rule in before] or [{}]
            self.obj(branch, path, forked, inside_or=True)
            rules.extend(forked)
            if len(rules) > _MAX_COMBINATIONS:
                raise self.fail(
                    where,
                    f'"$or" expands into more than {_MAX_COMBINATIONS} combinations; '
                    "split the pattern into several.",
                )

    # -- values ---------------------------------------------------------------------

    def values(self, values: Any, path: Path) -> list[Leaf]:
        if not values:
            raise self.fail(path, "empty lists are not allowed; list at least one value.")
        leaves: list[Leaf] = []
        for value in values:
            if isinstance(value, str):
                address = _ip(value) if self.dialect != "sns-attributes" else None
                leaves.append(
                    ExactString(value) if address is None else ExactAddress(value, address)
                )
            elif isinstance(value, bool) or value is None:
                leaves.append(ExactLiteral(value))
            elif is_number(value):
                leaves.append(ExactNumber(self.number(value, path)))
            elif isinstance(value, Mapping):
                leaves.append(self.operator(value, path))
            else:
                raise self.fail(
                    path,
                    f"a value must be a string, a number, true, false, null or an operator "
                    f"object, got {_show(value)}.",
                )
        return leaves

    def number(self, value: Any, path: Path) -> int | float:
        if not is_number(value) or not math.isfinite(value):
            raise self.fail(path, f"numbers must be finite, got {_show(value)}.")
        if self.dialect != "eventbridge" and abs(value) > _SNS_NUMBER_LIMIT:
            raise self.fail(path, f"SNS accepts numbers from -1e9 to 1e9, got {_show(value)}.")
        return int(value) if isinstance(value, int) else float(value)

    def operator(self, spec: Mapping[Any, Any], path: Path) -> Leaf:
        if len(spec) != 1:
            names = ", ".join(repr(k) for k in spec) or "none"
            raise self.fail(
                path, f"an operator object has exactly one key, got {len(spec)} ({names})."
            )
        ((name, arg),) = spec.items()
        if name == "exact":
            return ExactString(self.text(name, arg, path))
        if name in ("prefix", "suffix"):
            ignore_case = False
            if isinstance(arg, Mapping):
                if list(arg) != ["equals-ignore-case"]:
                    raise self.fail(
                        path,
                        f'"{name}" takes a string or {{"equals-ignore-case": "..."}}, '
                        f"got {_show(arg)}.",
                    )
                arg, ignore_case = arg["equals-ignore-case"], True
            text = self.text(name, arg, path)
            return Prefix(text, ignore_case) if name == "prefix" else Suffix(text, ignore_case)
        if name == "equals-ignore-case":
            return EqualsIgnoreCase(self.text(name, arg, path))
        if name == "wildcard":
            self.no_sns(name, path)
            return Wildcard(self.wildcard(self.text(name, arg, path), path))
        if name == "numeric":
            return self.numeric(arg, path)
        if name == "exists":
            if not isinstance(arg, bool):
                raise self.fail(path, f'"exists" takes true or false, got {_show(arg)}.')
            return Exists() if arg else _Absent()
        if name == "cidr":
            return self.cidr(self.text(name, arg, path), path)
        if name == "anything-but":
            return self.anything_but(arg, path)
        raise self.fail(
            path,
            f"unknown operator {name!r}; use one of {', '.join(sorted(_OPERATORS))}.",
        )

    def no_sns(self, name: str, path: Path) -> None:
        if self.dialect != "eventbridge":
            raise self.fail(path, f'SNS filter policies do not support "{name}".')

    def text(self, name: str, arg: Any, path: Path) -> str:
        if not isinstance(arg, str):
            raise self.fail(path, f'"{name}" takes a string, got {_show(arg)}.')
        return arg

    def wildcard(self, text: str, path: Path) -> re.Pattern[str]:
        out: list[str] = []
        i, star = 0, False
        while i < len(text):
            char = text[i]
            if char == "*":
                if star:
                    raise self.fail(
                        path,
                        f"wildcard {text!r} has consecutive '*' at position {i}; one '*' "
                        "already matches any run of characters.",
                    )
                out.append(".*")
                star = True
            elif char == "\\":
                following = text[i + 1 : i + 2]
                if following not in ("*", "\\"):
                    raise self.fail(
                        path,
                        f"wildcard {text!r} has an invalid escape at position {i}; only "
                        "'\\*' (a literal star) and '\\\\' (a literal backslash) are allowed.",
                    )
                out.append(re.escape(following))
                i += 1
                star = False
            else:
                out.append(re.escape(char))
                star = False
            i += 1
        return re.compile("".join(out), re.DOTALL)

    def cidr(self, text: str, path: Path) -> Cidr:
        if "/" not in text:
            raise self.fail(
                path, f'"cidr" takes an address block such as "10.0.0.0/24", got {text!r}.'
            )
        try:
            return Cidr(ipaddress.ip_network(text, strict=False))
        except ValueError as exc:
            raise self.fail(
                path, f"{text!r} is not a valid IPv4 or IPv6 CIDR block ({exc})."
            ) from None

    def numeric(self, arg: Any, path: Path) -> Numeric:
        if not isinstance(arg, list | tuple) or not arg:
            raise self.fail(
                path,
                f'"numeric" takes a list such as [">", 0, "<=", 5], got {_show(arg)}.',
            )
        terms = list(arg)
        if len(terms) % 2 or len(terms) > 4:
            raise self.fail(
                path,
                f'"numeric" takes one or two (operator, number) pairs, got {_show(arg)}.',
            )
        low, low_open, high, high_open = -math.inf, False, math.inf, False
        for n in range(0, len(terms), 2):
            op, value = terms[n], terms[n + 1]
            if op not in ("=", "<", "<=", ">", ">="):
                raise self.fail(
                    path,
                    f"unknown numeric operator {_show(op)}; use =, <, <=, > or >=.",
                )
            if not is_number(value):
                raise self.fail(
                    path, f'the value after "{op}" must be a number, got {_show(value)}.'
                )
            number = self.number(value, path)
            if op == "=":
                if len(terms) != 2:
                    raise self.fail(path, '"=" stands alone in a numeric match: ["=", 5].')
                return Numeric(number, False, number, False)
            if op in (">", ">="):
                if n != 0:
                    raise self.fail(
                        path,
                        f'the lower bound comes first: write [{_show(op)}, low, "<", high], '
                        f"got {_show(arg)}.",
                    )
                low, low_open = number, op == ">"
            else:
                if n == 0 and len(terms) == 4:
                    raise self.fail(
                        path,
                        f'the lower bound comes first: write [">", low, {_show(op)}, high], '
                        f"got {_show(arg)}.",
                    )
                high, high_open = number, op == "<"
        if low >= high:
            raise self.fail(
                path, f"the lower bound must be below the upper bound, got {_show(arg)}."
            )
        return Numeric(low, low_open, high, high_open)

    def anything_but(self, arg: Any, path: Path) -> AnythingBut:
        form = None
        if isinstance(arg, Mapping):
            if len(arg) != 1:
                raise self.fail(
                    path,
                    '"anything-but" takes a value, a list, or one of {"prefix": ...}, '
                    f'{{"suffix": ...}}, {{"equals-ignore-case": ...}}, {{"wildcard": ...}}; '
                    f"got {_show(arg)}.",
                )
            ((form, arg),) = arg.items()
            if form not in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
                raise self.fail(
                    path,
                    f"unsupported anything-but form {form!r}; use prefix, suffix, "
                    "equals-ignore-case or wildcard.",
                )
            if form == "wildcard":
                self.no_sns("anything-but wildcard", path)
        items = list(arg) if isinstance(arg, list | tuple) else [arg]
        if not items:
            raise self.fail(path, '"anything-but" needs at least one value.')
        if form is not None:
            texts = []
            for item in items:
                if not isinstance(item, str):
                    raise self.fail(
                        path, f'"anything-but" {form} takes strings, got {_show(item)}.'
                    )
                if not item and form in ("prefix", "suffix"):
                    raise self.fail(path, f'"anything-but" {form} cannot be empty.')
                texts.append(item)
            if form == "equals-ignore-case":
                return AnythingBut(form, tuple({t.lower() for t in texts}))
            if form == "wildcard":
                return AnythingBut(form, tuple(self.wildcard(t, path) for t in texts))
            return AnythingBut(form, tuple(texts))
        if all(isinstance(item, str) for item in items):
            return AnythingBut("string", tuple(frozenset(items)))
        if all(is_number(item) for item in items):
            return AnythingBut("number", tuple(self.number(item, path) for item in items))
        raise self.fail(
            path,
            f'"anything-but" takes strings only or numbers only (not null, booleans, objects '
            f"or a mix), got {_show(arg)}.",
        )


class _Absent(Leaf):
    """``{"exists": false}`` while parsing; it becomes ``Condition.absent_ok``."""

    __slots__ = ()

    def test(self, value: Any) -> bool:  # pragma: no cover - never kept as a leaf
        return False


def _show(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def compile_pattern(pattern: Any, dialect: Dialect = "eventbridge") -> Compiled:
    """Validate ``pattern`` (a mapping, or JSON text) and compile it.

    Raises:
        InvalidPattern: The pattern is not valid JSON or breaks a rule of the language; the
            message names the field and what is wrong.
    """
    parser = _Parser(dialect)
    if isinstance(pattern, str | bytes):
        try:
            pattern = json.loads(pattern)
        except ValueError as exc:
            raise InvalidPattern(f"The {parser.what} is not valid JSON: {exc}.") from None
    return parser.parse(pattern)
