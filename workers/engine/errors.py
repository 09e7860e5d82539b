"""Error types raised by the scoring engine.

Their messages are shown verbatim to people, so they must be specific and must never reveal how
the rows are split between the leaderboards.
"""


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


def examples(values: list[object], total: int, limit: int = 5) -> str:
    """``'a', 'b', 'c'`` or ``'a', 'b', … (12 in all)`` for a message."""
    shown = ", ".join(show(v) for v in values[:limit])
    return shown + (f", … ({total:,} in all)" if total > limit else "")


def count(n: int, singular: str, plural: str | None = None) -> str:
    """``1 id`` / ``3 ids``: messages are read by people, so the grammar should hold."""
    return f"{n:,} {singular if n == 1 else (plural or singular + 's')}"
