"""What a model challenge's model must output, in words: light enough for the web process,
which shows it on the Data and Submit tabs (no numpy, no TensorFlow)."""

from __future__ import annotations

from workers.engine.errors import show
from workers.engine.registry import get_spec

# Classes are listed one by one up to this many in output_spec; beyond it, abbreviated.
MAX_SPELLED_CLASSES = 20


def output_spec(metric_name: str, classes: list[str] | None) -> str:
    """What a model must output per row for ``metric_name``, as a sentence for the Data tab."""
    m = get_spec(metric_name)
    if m.prediction == "class_probabilities":
        k = len(classes or [])
        return f"{k} class probabilities per row (softmax), in the class order {class_order(classes)}"
    if m.prediction == "label":
        k = len(classes or [])
        text = (
            f"{k} class probabilities per row (softmax), in the class order {class_order(classes)}; "
            "the most probable class is the prediction"
        )
        if k == 2:
            assert classes is not None
            text += (
                f" (or one probability of class {show(classes[1])} per row, read as that class from 0.5 up)"
            )
        elif m.target == "ordinal":
            text += " (or one number per row, rounded to the nearest rating)"
        return text
    if m.prediction == "probability":
        return "one probability per row (of class '1', e.g. a sigmoid output)"
    return "one number per row"


def class_order(classes: list[str] | None) -> str:
    """``0, 1, …, 9`` for consecutive integers (already in order); otherwise every class up to
    MAX_SPELLED_CLASSES, since sorted text order (``1, 10, 2``) is easy to get wrong."""
    classes = list(classes or [])
    if len(classes) > 3 and _consecutive_ints(classes):
        return f"{classes[0]}, {classes[1]}, …, {classes[-1]}"
    if len(classes) <= MAX_SPELLED_CLASSES:
        return ", ".join(classes)
    return ", ".join(classes[:3]) + f", …, {classes[-1]} ({len(classes):,} classes in sorted text order)"


def _is_int(text: str) -> bool:
    try:
        return str(int(text)) == text
    except ValueError:
        return False


def _consecutive_ints(classes: list[str]) -> bool:
    if not all(_is_int(c) for c in classes):
        return False
    values = [int(c) for c in classes]
    return values == list(range(values[0], values[0] + len(values)))
