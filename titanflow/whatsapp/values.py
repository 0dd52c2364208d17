"""Reading values out of Meta's JSON without trusting their types.

Webhook deliveries and Graph listings are parsed JSON: any field may arrive as a string, a list,
an object, a huge number or null, whatever the documentation says. These read a field as the one
type the caller wants, and anything else as empty, so a hostile value costs its field only.
"""

import math

INT32_MAX = 2**31 - 1


def text(value, limit: int | None = None) -> str:
    """A string or number as text, cut to `limit` (the column's width); any other type is ""."""
    if isinstance(value, str):
        found = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        found = str(value) if math.isfinite(value) else ""
    else:
        return ""
    return found[:limit] if limit else found


def mapping(value) -> dict:
    return value if isinstance(value, dict) else {}


def mappings(value) -> list[dict]:
    """The objects in a list; a value that is not a list holds none."""
    return [i for i in value if isinstance(i, dict)] if isinstance(value, list) else []


def integer(value) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def int32(value) -> int | None:
    """An integer that fits a Postgres `integer` column (Meta's error codes), else None."""
    number = integer(value)
    return number if number is not None and -INT32_MAX - 1 <= number <= INT32_MAX else None


def clean(value):
    """`value` with NUL stripped from every string (Postgres text and jsonb refuse it), lone
    surrogates replaced, and inf or NaN dropped (JSON has neither)."""
    if isinstance(value, str):
        return value.replace("\x00", "").encode("utf-8", "replace").decode()
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def fit(value, width: int, *, label: str, notes: list[str]) -> str:
    """`value` as text of at most `width` characters, noting in `notes` when it was cut."""
    found = text(value)
    if len(found) <= width:
        return found
    notes.append(f"{label} cut to {width} characters")
    return found[:width]
