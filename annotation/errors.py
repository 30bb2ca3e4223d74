"""Domain errors of the annotation services. Each carries a sentence for people, a code for programs and
the HTTP status an API should answer with, so every caller (REST, pages, commands) reports them alike."""

import errno
import re


class AnnotationError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def shown(value, limit: int = 40) -> str:
    """A client's bad value as an error sentence quotes it: its repr, cut to ``limit`` characters (QA: a 300-digit
    coordinate or a 100 KB string came back whole in the 400)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Characters a name shown to others may not hold: controls (NUL, newlines, escapes) and the text-direction
# overrides, embeddings and isolates that make a name read otherwise than it is (U+202E, then "gpj.exe", reads
# "exe.jpg").
_HIDDEN = {
    chr(c) for c in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A))
}


def hidden_character(text: str) -> str | None:
    """The first control or text-direction character in ``text``, as U+XXXX, or None (QA: campaign and dataset
    names took U+202E, which reverses how the rest of the name reads on every page that shows it)."""
    found = next((ch for ch in text if ch in _HIDDEN), None)
    return None if found is None else f"U+{ord(found):04X}"


def unanswered(missing: list[int], what: str) -> AnnotationError:
    """The error for a submission that leaves ``missing`` items of ``what`` (e.g. "HIT 7") without an answer."""
    which, verb = ("1 item", "has") if len(missing) == 1 else (f"{len(missing)} items", "have")
    return AnnotationError(f"{which} of {what} {verb} no answer, e.g. item {missing[0]}.")


class NotFound(AnnotationError):
    status = 404
    code = "not_found"


class Forbidden(AnnotationError):
    status = 403
    code = "forbidden"


class Conflict(AnnotationError):
    status = 409
    code = "conflict"


class NameTaken(Conflict):
    """The owner already has a campaign of this name: the form can point at the name field by this code."""

    code = "name_taken"


class Gone(AnnotationError):
    status = 410
    code = "expired"


class StorageFull(AnnotationError):
    """The server's disk (or the account's quota) is full: what the request brought was not kept. Not the
    client's fault, and a retry works once a person has freed space."""

    status = 507
    code = "storage_full"


# An absolute server path in an error's message (not a URL's path, nor a relative one): cut to its last segment.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~-])/(?:[^\s'\":,/]+/)+([^\s'\":,/]*)")


def paths_cut(message: str) -> str:
    """``message`` with every absolute server path cut to its last segment ("…/name"): where the server keeps its
    files is not for the people who read a failed job's error (the full error goes to the log)."""
    return _ABSOLUTE_PATH.sub(lambda m: f"…/{m.group(1)}", message)


def disk_full(error: BaseException) -> bool:
    """Whether ``error`` is a write that met a full disk or quota."""
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)
