"""Matching events against compiled patterns: a plain reference matcher and an indexed one.

Both follow Event Ruler's array-consistent semantics (``rulesForJSONEvent``, what
EventBridge runs): an event is flattened into leaves, each with its *array membership*
(which element of which array it came from); a sub-rule matches when every condition can
pick a matching leaf such that all picked leaves agree on the element of every array they
share. Conditions are taken in name order, and ``exists: false`` holds when no leaf of the
field agrees with the elements picked so far, as in Ruler.

:func:`reference_matches` walks the event for each condition of each sub-rule in turn: it
is the definition, used by the property test and the benchmark. :class:`PatternSet`
compiles many patterns into one state machine over the fields they name, each state
indexing its transitions by value, so a field of the event is read once, when a state
first needs it, and only the states its values reach are visited, whatever the number of
patterns (Event Ruler's idea).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any

from ._patterns import (
    Compiled,
    Condition,
    EqualsIgnoreCase,
    Leaf,
    Numeric,
    Prefix,
    Suffix,
    is_number,
    literal_key,
)

__all__ = ("PatternSet", "reference_matches")

Membership = tuple[tuple[Any, int], ...]
_MISSING = object()
_NONE_CHOSEN: dict[Any, int] = {}  # never changed: _merge copies before adding


def _merge(so_far: dict[Any, int], membership: Membership) -> dict[Any, int] | None:
    if not membership:
        return so_far
    merged = None
    for array, index in membership:
        seen = so_far.get(array)
        if seen is None:
            if merged is None:
                merged = dict(so_far)
            merged[array] = index
        elif seen != index:
            return None
    return so_far if merged is None else merged


def _consistent(so_far: dict[Any, int], membership: Membership) -> bool:
    for array, index in membership:
        seen = so_far.get(array)
        if seen is not None and seen != index:
            return False
    return True


def _solve(
    steps: Sequence[tuple[Sequence[Membership], Sequence[Membership], bool]],
    at: int,
    so_far: dict[Any, int],
) -> bool:
    """Can conditions ``steps[at:]`` pick leaves consistent with ``so_far``?

    Each step is (memberships of the matching leaves, memberships of every leaf of the
    field, whether the field may be absent).
    """
    if at == len(steps):
        return True
    hits, present, absent_ok = steps[at]
    if (
        absent_ok
        and not any(_consistent(so_far, m) for m in present)
        and _solve(steps, at + 1, so_far)
    ):
        return True
    for membership in hits:
        merged = _merge(so_far, membership)
        if merged is not None and _solve(steps, at + 1, merged):
            return True
    return False


# --------------------------------------------------------------------------- reference


def _leaves(event: Any, path: tuple[str, ...]) -> list[tuple[Any, Membership]]:
    found: list[tuple[Any, Membership]] = []

    def walk(node: Any, depth: int, membership: Membership) -> None:
        if isinstance(node, list):
            # an array is known by where it sits: its path and the elements around it
            array = (path[:depth], membership)
            for index, element in enumerate(node):
                walk(element, depth, (*membership, (array, index)))
        elif depth == len(path):
            if not isinstance(node, dict):
                found.append((node, membership))
        elif isinstance(node, dict) and path[depth] in node:
            walk(node[path[depth]], depth + 1, membership)

    walk(event, 0, ())
    return found


def _condition_step(
    condition: Condition, event: Any
) -> tuple[list[Membership], list[Membership], bool]:
    leaves = _leaves(event, condition.path)
    hits = [m for value, m in leaves if any(leaf.test(value) for leaf in condition.leaves)]
    return hits, [m for _, m in leaves], condition.absent_ok


def reference_matches(compiled: Compiled, event: Any) -> bool:
    """Does ``event`` (a parsed JSON object) match the pattern? The plain definition."""
    if not isinstance(event, dict):
        return False
    for subrule in compiled.subrules:
        steps = []
        for condition in subrule:
            step = _condition_step(condition, event)
            if not step[0] and not step[2]:
                break  # a required field has no matching value
            steps.append(step)
        else:
            if _solve(steps, 0, {}):
                return True
    return False


# --------------------------------------------------------------------------- compiled


def _fetch(event: dict[str, Any], path: tuple[str, ...]) -> Sequence[tuple[Any, Membership]]:
    """The leaves of one field: a few dict lookups, or the general walk when arrays appear."""
    node: Any = event
    for key in path:
        if isinstance(node, dict):
            node = node.get(key, _MISSING)
            if node is _MISSING:
                return ()
        elif isinstance(node, list):
            return _leaves(event, path)
        else:
            return ()
    if isinstance(node, list):
        return _leaves(event, path)
    return () if isinstance(node, dict) else ((node, ()),)


class _Affixes:
    """Prefixes (or suffixes) by length: a value is looked up once per distinct length."""

    __slots__ = ("by_length", "lengths")

    def __init__(self) -> None:
        self.by_length: dict[int, dict[str, list[int]]] = {}
        self.lengths: list[int] = []

    def add(self, text: str, condition: int) -> None:
        table = self.by_length.get(len(text))
        if table is None:
            table = self.by_length[len(text)] = {}
            self.lengths = sorted(self.by_length)
        table.setdefault(text, []).append(condition)

    def prefixes(self, value: str, out: list[int]) -> None:
        size = len(value)
        for length in self.lengths:
            if length > size:
                break
            found = self.by_length[length].get(value[:length])
            if found:
                out.extend(found)

    def suffixes(self, value: str, out: list[int]) -> None:
        size = len(value)
        for length in self.lengths:
            if length > size:
                break
            found = self.by_length[length].get(value[size - length :])
            if found:
                out.extend(found)


class _Ranges:
    """Numeric ranges cut at their bounds: a value finds its segment by bisection."""

    __slots__ = ("bounds", "ranges", "segments")

    def __init__(self) -> None:
        self.ranges: list[tuple[Numeric, int]] = []
        self.bounds: list[float] = []
        self.segments: list[list[int]] | None = None  # built at the first lookup

    def add(self, leaf: Numeric, condition: int) -> None:
        self.ranges.append((leaf, condition))
        self.segments = None

    def _build(self) -> list[list[int]]:
        bounds = sorted(
            {b for r, _ in self.ranges for b in (r.low, r.high) if b not in (-INF, INF)}
        )
        # segment 2i is the open interval below bounds[i]; 2i+1 is the point bounds[i]
        segments: list[list[int]] = []
        for n in range(2 * len(bounds) + 1):
            if n % 2:
                point = bounds[n // 2]
                segments.append([c for r, c in self.ranges if r.test(point)])
            else:
                below = bounds[n // 2 - 1] if n else -INF
                above = bounds[n // 2] if n // 2 < len(bounds) else INF
                segments.append([c for r, c in self.ranges if r.low <= below and r.high >= above])
        self.bounds, self.segments = bounds, segments
        return segments

    def find(self, value: float, out: list[int]) -> None:
        segments = self.segments if self.segments is not None else self._build()
        at = bisect_left(self.bounds, value)
        if at < len(self.bounds) and self.bounds[at] == value:
            out.extend(segments[2 * at + 1])
        else:
            out.extend(segments[2 * at])


INF = float("inf")


class _Index:
    """What the patterns want from the leaves of one field."""

    __slots__ = (
        "exact_only",
        "exists",
        "iprefixes",
        "istrs",
        "isuffixes",
        "lits",
        "nums",
        "others",
        "prefixes",
        "presence",
        "ranges",
        "strs",
        "suffixes",
    )

    def __init__(self) -> None:
        self.strs: dict[str, list[int]] = {}
        self.istrs: dict[str, list[int]] = {}
        self.nums: dict[int | float, list[int]] = {}
        self.lits: dict[str, list[int]] = {}
        self.prefixes: _Affixes | None = None
        self.iprefixes: _Affixes | None = None
        self.suffixes: _Affixes | None = None
        self.isuffixes: _Affixes | None = None
        self.ranges: _Ranges | None = None
        self.others: list[tuple[Leaf, int]] = []
        self.exists: list[int] = []
        self.presence = -1  # slot recording every leaf, for exists: false; -1 for none
        self.exact_only = True  # only exact values: a lookup is one dict access

    def add(self, leaf: Leaf, condition: int) -> None:
        kind = leaf.kind
        if kind not in ("str", "num", "lit"):
            self.exact_only = False
        if kind == "str":
            self.strs.setdefault(leaf.key, []).append(condition)
        elif kind == "num":
            self.nums.setdefault(leaf.key, []).append(condition)
        elif kind == "lit":
            self.lits.setdefault(leaf.key, []).append(condition)
        elif kind == "exists":
            self.exists.append(condition)
        elif isinstance(leaf, EqualsIgnoreCase):
            self.istrs.setdefault(leaf.text, []).append(condition)
        elif isinstance(leaf, Prefix):
            if leaf.ignore_case:
                self.iprefixes = self.iprefixes or _Affixes()
                self.iprefixes.add(leaf.text, condition)
            else:
                self.prefixes = self.prefixes or _Affixes()
                self.prefixes.add(leaf.text, condition)
        elif isinstance(leaf, Suffix):
            if leaf.ignore_case:
                self.isuffixes = self.isuffixes or _Affixes()
                self.isuffixes.add(leaf.text, condition)
            else:
                self.suffixes = self.suffixes or _Affixes()
                self.suffixes.add(leaf.text, condition)
        elif isinstance(leaf, Numeric):
            self.ranges = self.ranges or _Ranges()
            self.ranges.add(leaf, condition)
        else:
            self.others.append((leaf, condition))

    def strings(self, value: str, out: list[int]) -> None:
        found = self.strs.get(value)
        if found:
            out.extend(found)
        if self.istrs or self.iprefixes or self.isuffixes:
            lower = value.lower()
            found = self.istrs.get(lower)
            if found:
                out.extend(found)
            if self.iprefixes is not None:
                self.iprefixes.prefixes(lower, out)
            if self.isuffixes is not None:
                self.isuffixes.suffixes(lower, out)
        if self.prefixes is not None:
            self.prefixes.prefixes(value, out)
        if self.suffixes is not None:
            self.suffixes.suffixes(value, out)

    def lookup(self, value: Any) -> Sequence[int]:
        """The targets whose leaf matches ``value`` (a target may repeat)."""
        if self.exact_only:  # the common case: one hash lookup, nothing copied
            if isinstance(value, str):
                return self.strs.get(value, ())
            if value is None or value is True or value is False:
                return self.lits.get(literal_key(value), ())
            return self.nums.get(value, ()) if is_number(value) else ()
        found: list[int] = []
        if isinstance(value, str):
            self.strings(value, found)
        elif value is None or value is True or value is False:
            found.extend(self.lits.get(literal_key(value), ()))
        elif is_number(value):
            found.extend(self.nums.get(value, ()))
            if self.ranges is not None:
                self.ranges.find(value, found)
        for leaf, target in self.others:
            if leaf.test(value):
                found.append(target)
        found.extend(self.exists)
        return found


class _State:
    """A state of the matching machine: the conditions met so far on one path through it."""

    __slots__ = ("edges", "keys", "out", "terminal")

    def __init__(self) -> None:
        self.out: dict[int, _Index] = {}  # field slot -> which next states its leaves reach
        self.edges: tuple[tuple[int, _Index], ...] = ()  # ``out`` frozen for matching
        self.keys: dict[tuple[int, tuple[Any, ...]], int] = {}  # (slot, condition) -> state
        self.terminal: list[int] = []  # sub-rules whose required conditions all hold here


def _signature(leaves: Sequence[Leaf]) -> tuple[Any, ...]:
    signature = []
    for leaf in leaves:
        names: tuple[str, ...] = getattr(leaf, "__slots__", ())
        signature.append((type(leaf).__name__, *(getattr(leaf, name) for name in names)))
    return tuple(signature)


class PatternSet:
    """Many compiled patterns matched together, as Event Ruler's machine does.

    The required conditions of every sub-rule become transitions of one shared state
    machine (conditions on the most selective fields first, so sub-rules share their
    first steps); each state indexes its transitions by value (hashed exact values,
    prefixes and suffixes by length, numeric ranges by bisection). A field's leaves are
    read from the event when a reached state first asks for them; only the states the
    event's values reach are visited, carrying the array elements chosen so far. Sub-rules with
    ``exists: false`` are confirmed at the end with the reference definition.

    Args:
        patterns: The compiled patterns; :meth:`matching` answers their positions.
    """

    def __init__(self, patterns: Sequence[Compiled]) -> None:
        self._slots: dict[tuple[str, ...], int] = {}
        self._paths: list[tuple[str, ...]] = []
        self._states = [_State()]
        self._subrule_pattern: list[int] = []
        self._subrule_conditions: list[tuple[Condition, ...]] = []
        self._confirm: list[bool] = []  # sub-rules with exists: false, confirmed at the end
        self._always: list[int] = []  # sub-rules with no required condition
        subrules = [(n, sub) for n, pattern in enumerate(patterns) for sub in pattern.subrules]
        rank = self._ranking([sub for _, sub in subrules])
        for number, subrule in subrules:
            sid = len(self._subrule_pattern)
            self._subrule_pattern.append(number)
            self._subrule_conditions.append(subrule)
            self._confirm.append(any(c.absent_ok for c in subrule))
            required = sorted((c for c in subrule if not c.absent_ok), key=rank)
            if not required:
                self._always.append(sid)
                continue
            state = self._states[0]
            for condition in required:
                state = self._step(state, condition)
            state.terminal.append(sid)

    @staticmethod
    def _ranking(subrules: Sequence[tuple[Condition, ...]]) -> Callable[[Condition], Any]:
        # fields with many distinct exact values split the sub-rules best: test them first
        exact: dict[tuple[str, ...], set[Any]] = {}
        for subrule in subrules:
            for condition in subrule:
                keys = exact.setdefault(condition.path, set())
                for leaf in condition.leaves:
                    if leaf.kind in ("str", "num", "lit"):
                        keys.add((leaf.kind, leaf.key))

        def rank(condition: Condition) -> Any:
            return (-len(exact.get(condition.path, ())), condition.name)

        return rank

    def _slot(self, path: tuple[str, ...]) -> int:
        slot = self._slots.get(path)
        if slot is None:
            slot = self._slots[path] = len(self._paths)
            self._paths.append(path)
        return slot

    def _step(self, state: _State, condition: Condition) -> _State:
        slot = self._slot(condition.path)
        key = (slot, _signature(condition.leaves))
        target = state.keys.get(key)
        if target is None:
            target = state.keys[key] = len(self._states)
            self._states.append(_State())
            index = state.out.get(slot)
            if index is None:
                index = state.out[slot] = _Index()
                state.edges = tuple(state.out.items())
            for leaf in condition.leaves:
                index.add(leaf, target)
        return self._states[target]

    # -- matching -------------------------------------------------------------------

    def matching(self, event: Any) -> list[int]:
        """Positions of the patterns that ``event`` (a parsed JSON object) matches, in order."""
        if not isinstance(event, dict):
            return []
        leaves: dict[int, Sequence[tuple[Any, Membership]]] = {}
        paths = self._paths
        states = self._states
        found: list[int] = []
        todo: list[tuple[int, dict[Any, int]]] = [(0, _NONE_CHOSEN)]
        seen: set[int] = set()
        while todo:
            number, chosen = todo.pop()
            if not chosen:  # without arrays chosen, a state's outcome is the same every time
                if number in seen:
                    continue
                seen.add(number)
            state = states[number]
            if state.terminal:
                found.extend(state.terminal)
            for slot, index in state.edges:
                values = leaves.get(slot)
                if values is None:  # a field's leaves are fetched when a state first asks
                    values = leaves[slot] = _fetch(event, paths[slot])
                for value, membership in values:
                    targets = index.lookup(value)
                    if not targets:
                        continue
                    if membership:
                        merged = _merge(chosen, membership)
                        if merged is None:
                            continue
                    else:
                        merged = chosen
                    for target in targets:
                        todo.append((target, merged))
        if not found and not self._always:
            return []
        found.extend(self._always)
        matched: set[int] = set()
        pattern_of = self._subrule_pattern
        for sid in found:
            number = pattern_of[sid]
            if number in matched:
                continue
            if not self._confirm[sid] or self._confirmed(sid, event):
                matched.add(number)
        return sorted(matched)

    def _confirmed(self, sid: int, event: dict[str, Any]) -> bool:
        steps = [_condition_step(condition, event) for condition in self._subrule_conditions[sid]]
        return all(hits or absent_ok for hits, _, absent_ok in steps) and _solve(steps, 0, {})
