"""The answers list of a submit (a verification HIT or a box task), checked entry by entry before anything is
written: the same rules and sentences for both kinds of work."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import TypeVar

from annotation.errors import AnnotationError, shown, unanswered

MAX_RESPONSE_MS = 3_600_000

Choice = TypeVar("Choice")


def answers_read(
    answers: object, *, items: Collection[int], choices: Mapping[str, Choice], unit: str
) -> Iterator[tuple[int, Choice, int, dict]]:
    """Each entry ``{item, answer, ms, …}`` as ``(item id, choices[answer], ms, the entry)``, in order. Every
    item of ``items`` (the ids of ``unit``, e.g. "HIT 12") answered exactly once, with one of ``choices``, in
    0 to ``MAX_RESPONSE_MS`` ms; anything else raises an AnnotationError whose sentence names the entry. The
    caller reads the whole iterator before it writes."""
    if not isinstance(answers, list):
        raise AnnotationError("answers must be a list of {item, answer, ms} objects.")
    seen: set[int] = set()
    for entry in answers:
        if not isinstance(entry, dict):
            raise AnnotationError("Each answer must be an object with item, answer and ms.")
        item_id, answer, ms = entry.get("item"), entry.get("answer"), entry.get("ms", 0)
        if not isinstance(item_id, int) or isinstance(item_id, bool):
            raise AnnotationError(f"item must be an integer id; got {shown(item_id)}.")
        if item_id not in items:
            raise AnnotationError(f"Item {item_id} is not part of {unit}.")
        if item_id in seen:
            raise AnnotationError(f"Item {item_id} is answered twice.")
        if not isinstance(answer, str) or answer not in choices:  # a list or an object is unhashable
            raise AnnotationError(f"answer must be one of {', '.join(choices)}; got {shown(answer)}.")
        if not isinstance(ms, int) or isinstance(ms, bool) or not 0 <= ms <= MAX_RESPONSE_MS:
            raise AnnotationError(f"ms must be a whole number of milliseconds from 0 to {MAX_RESPONSE_MS}.")
        seen.add(item_id)
        yield item_id, choices[answer], ms, entry
    missing = sorted(set(items) - seen)
    if missing:
        raise unanswered(missing, unit)
