"""Matching events against compiled patterns: a plain reference matcher and an indexed one.

Both follow Event Ruler's array-consistent semantics (``rulesForJSONEvent``, what
EventBridge runs): an event is flattened into leaves, each with its *array membership*
(which element of which array it came from); a sub-rule matches when every condition can
pick a matching leaf such that all picked leaves agree on the element of every array they
share. Conditions are taken in name order, and ``exists: false`` holds when no leaf of the
field agrees with the elements picked so far, as in Ruler.

:func:`reference_matches` walks the event for each condition of each sub-rule in turn: it
is the definition, used by the property test and the benchmark. :class:`PatternSet`
compiles many patterns into one trie of the fields they name, with a hash index of exact
values per field, so an event is walked once and only the sub-rules whose values occur in
it are looked at, whatever the number of patterns (Event Ruler's idea).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
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

    def add(self, leaf: Leaf, condition: int) -> None:
        kind = leaf.kind
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


class _Node:
    __slots__ = ("children", "index")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.index: _Index | None = None


class _Walk:
    """The state of matching one event."""

    __slots__ = ("arrays", "hits", "present")

    def __init__(self) -> None:
        self.hits: dict[int, list[Membership]] = {}
        self.present: dict[int, list[Membership]] = {}
        self.arrays = 0


class PatternSet:
    """Many compiled patterns matched together: one walk of the event, hashed exact values.

    Args:
        patterns: The compiled patterns; :meth:`matching` answers their positions.
    """

    def __init__(self, patterns: Sequence[Compiled]) -> None:
        self._root = _Node()
        self._subrule_pattern: list[int] = []
        self._subrule_conditions: list[tuple[int, ...]] = []
        self._subrule_needs: list[int] = []
        self._condition_subrule: list[int] = []
        self._condition_required: list[bool] = []
        self._condition_absent: list[bool] = []
        self._condition_presence: list[int] = []
        self._always: list[int] = []  # sub-rules with no required field: checked every time
        presence_slots: dict[tuple[str, ...], int] = {}
        for number, pattern in enumerate(patterns):
            for subrule in pattern.subrules:
                sid = len(self._subrule_pattern)
                self._subrule_pattern.append(number)
                ids = []
                for condition in subrule:
                    cid = len(self._condition_subrule)
                    ids.append(cid)
                    self._condition_subrule.append(sid)
                    self._condition_required.append(not condition.absent_ok)
                    self._condition_absent.append(condition.absent_ok)
                    index = self._index_for(condition.path)
                    for leaf in condition.leaves:
                        index.add(leaf, cid)
                    slot = -1
                    if condition.absent_ok:
                        slot = presence_slots.setdefault(condition.path, len(presence_slots))
                        index.presence = slot
                    self._condition_presence.append(slot)
                self._subrule_conditions.append(tuple(ids))
                needs = sum(1 for c in subrule if not c.absent_ok)
                self._subrule_needs.append(needs)
                if needs == 0:
                    self._always.append(sid)

    def _index_for(self, path: tuple[str, ...]) -> _Index:
        node = self._root
        for step in path:
            child = node.children.get(step)
            if child is None:
                child = node.children[step] = _Node()
            node = child
        if node.index is None:
            node.index = _Index()
        return node.index

    # -- matching -------------------------------------------------------------------

    def matching(self, event: Any) -> list[int]:
        """Positions of the patterns that ``event`` (a parsed JSON object) matches, in order."""
        if not isinstance(event, dict):
            return []
        walk = _Walk()
        self._object(event, self._root, (), walk)
        hits = walk.hits
        counts: dict[int, int] = {}
        subrule_of = self._condition_subrule
        required = self._condition_required
        for cid in hits:
            if required[cid]:
                sid = subrule_of[cid]
                counts[sid] = counts.get(sid, 0) + 1
        needs = self._subrule_needs
        matched: set[int] = set()
        pattern_of = self._subrule_pattern
        for sid, count in counts.items():
            if count == needs[sid] and pattern_of[sid] not in matched and self._holds(sid, walk):
                matched.add(pattern_of[sid])
        for sid in self._always:
            if pattern_of[sid] not in matched and self._holds(sid, walk):
                matched.add(pattern_of[sid])
        return sorted(matched)

    def _holds(self, sid: int, walk: _Walk) -> bool:
        conditions = self._subrule_conditions[sid]
        hits = walk.hits
        absent = self._condition_absent
        if not any(absent[cid] for cid in conditions) and all(
            () in hits[cid] for cid in conditions
        ):
            return True  # every field has a matching value outside any array
        empty: list[Membership] = []
        steps = [
            (
                hits.get(cid, empty),
                walk.present.get(self._condition_presence[cid], empty),
                absent[cid],
            )
            for cid in conditions
        ]
        return _solve(steps, 0, {})

    def _object(
        self, obj: dict[str, Any], node: _Node, membership: Membership, walk: _Walk
    ) -> None:
        for key, child in node.children.items():
            value = obj.get(key, _MISSING)
            if value is not _MISSING:
                self._value(value, child, membership, walk)

    def _value(self, value: Any, node: _Node, membership: Membership, walk: _Walk) -> None:
        if isinstance(value, dict):
            if node.children:
                self._object(value, node, membership, walk)
        elif isinstance(value, list):
            walk.arrays += 1
            array = walk.arrays
            for position, element in enumerate(value):
                self._value(element, node, (*membership, (array, position)), walk)
        elif node.index is not None:
            self._leaf(value, node.index, membership, walk)

    @staticmethod
    def _leaf(value: Any, index: _Index, membership: Membership, walk: _Walk) -> None:
        found: list[int] = []
        if isinstance(value, str):
            index.strings(value, found)
        elif value is None or value is True or value is False:
            found.extend(index.lits.get(literal_key(value), ()))
        elif is_number(value):
            found.extend(index.nums.get(value, ()))
            if index.ranges is not None:
                index.ranges.find(value, found)
        for leaf, cid in index.others:
            if leaf.test(value):
                found.append(cid)
        found.extend(index.exists)
        hits = walk.hits
        for cid in found:
            hits.setdefault(cid, []).append(membership)
        if index.presence >= 0:
            walk.present.setdefault(index.presence, []).append(membership)
