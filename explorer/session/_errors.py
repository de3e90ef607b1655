"""``SessionError`` and the sentences it says: a store's refusal (a PostgreSQL policy, a
missing privilege, the budget function) named as what was refused and why.

>>> why("permission denied for table session_truth", "Bo")
'the truth is hidden until the mentor reveals it'
"""

from __future__ import annotations


class SessionError(RuntimeError):
    """A session refused something: a bad code, a taken name, another's record, the budget."""


SessionError.__module__ = "explorer.session"  # where users import it from


def reason_of_store_error(err: BaseException) -> str:
    text = str(err)
    for marker in (" failed: ", " refused the record: ", " could not be read or written: "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return text.removesuffix("; nothing was written")


def why(reason: str, who: str) -> str:
    if "budget of" in reason:
        return reason.split(" (the store", 1)[0]
    if "row-level security" in reason:
        return f"participant {who!r} may only write their own records in this session"
    if "session_truth" in reason or "truth is hidden" in reason:
        return "the truth is hidden until the mentor reveals it"
    if "permission denied" in reason:
        return (
            f"participant {who!r} has no right to this in the session (only the mentor has, "
            "and nobody once the mentor has ended the session)"
        )
    return reason
