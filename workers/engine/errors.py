"""Error types raised by the scoring engine.

Their messages are shown verbatim to people, so they must be specific and must never reveal how
the rows are split between the leaderboards.
"""

from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Any


class ScoringError(Exception):
    """A submission is invalid; ``str(error)`` is shown to the learner.

    ``charged`` says whether the failed submission counts against the team's limits. Problems
    with the file itself (format, ids, values out of range) are free, so a learner can fix and
    resubmit; a file that passes every check but whose score cannot be computed, or a model
    whose own outputs are unusable, is charged like a scored submission: otherwise a free
    failure would answer questions about hidden rows at no cost.
    """

    def __init__(self, message: str, *, charged: bool = False) -> None:
        super().__init__(message)
        self.charged = charged


class SolutionError(Exception):
    """The organizer's solution file is invalid; every problem found is listed."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def show(value: object, width: int = 60) -> str:
    """Quote a user-supplied value for a message, shortened so one bad cell can't flood it."""
    text = str(value)
    if len(text) > width:
        text = text[: width - 1] + "…"
    return repr(text)


LISTED = 5  # how many examples a message lists before "… (N in all)"


def listing(shown: Iterable[str], total: int, limit: int = LISTED, *, tally: bool = True) -> str:
    """``a, b, c`` or ``a, b, … (12 in all)``: the first ``limit`` of ``shown`` (already worded),
    then the total when there are more (or just ``…`` without ``tally``). Every list of rows,
    ids or values in a message goes through here, so they all read alike."""
    head = ", ".join(islice(shown, limit))
    if total <= limit:
        return head
    return head + (f", … ({total:,} in all)" if tally else ", …")


def examples(values: Sequence[object], total: int, limit: int = LISTED) -> str:
    """``'a', 'b', 'c'`` or ``'a', 'b', … (12 in all)`` for a message."""
    return listing((show(v) for v in values), total, limit)


def row_numbers(rows: Sequence[int], prefix: str = "", *, tally: bool = True) -> str:
    """``row 1, row 7, …`` for 0-based ``rows`` (numbered from 1 for people), each after ``prefix``."""
    return listing((f"{prefix}{r + 1:,}" for r in rows), len(rows), tally=tally)


def id_examples(ids: Any, rows: Sequence[int], values: Any = None, *, verb: str = "has") -> str:
    """``id 'a' has 'x', id 'b' has 'y', … (12 in all)`` for the 0-based ``rows`` (a numpy
    array) of Arrow ``ids`` and, when given, of ``values``. Duck-typed, so this module stays
    free of pyarrow for the web process."""
    take = rows[:LISTED]
    names = ids.take(take).to_pylist()
    if values is None:
        shown = [f"id {show(i)}" for i in names]
    else:
        pairs = zip(names, values.take(take).to_pylist(), strict=True)
        shown = [f"id {show(i)} {verb} {show(v)}" for i, v in pairs]
    return listing(shown, len(rows))


def count(n: int, singular: str, plural: str | None = None) -> str:
    """``1 id`` / ``3 ids``: messages are read by people, so the grammar should hold."""
    return f"{n:,} {singular if n == 1 else (plural or singular + 's')}"
