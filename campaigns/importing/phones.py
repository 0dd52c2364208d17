"""Phone numbers to E.164. `phonenumbers.parse` costs ~45 µs, too slow for a million rows, so the
common shapes (+<cc><number>, 00<cc><number>, national with a plain trunk prefix) are split by
hand and only *validated* by phonenumbers; anything else takes the full parser."""

from functools import lru_cache

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneNumber
from phonenumbers.phonemetadata import PhoneMetadata

_SEPARATORS = str.maketrans("", "", " -().\u00a0/\t")
_MAX_DIGITS = 15


@lru_cache(maxsize=64)
def _region_prefixes(region: str) -> tuple[int, str, str]:
    metadata = PhoneMetadata.metadata_for_region(region)
    if metadata is None:
        return 0, "", ""
    trunk = metadata.national_prefix or ""
    if metadata.national_prefix_for_parsing not in (None, trunk):
        trunk = ""  # a pattern, not a plain prefix: leave it to the full parser
    international = metadata.international_prefix or ""
    return metadata.country_code, trunk, international if international.isdigit() else ""


def normalize_phone(raw: str, region: str) -> str | None:
    """`raw` as "+<digits>" when it is a valid number (national numbers read in `region`)."""
    cleaned = raw.translate(_SEPARATORS)
    if not cleaned:
        return None
    fast = _fast_path(cleaned, region)
    if fast:
        return fast
    return _full_parse(cleaned, region)


def _fast_path(cleaned: str, region: str) -> str | None:
    country_code, trunk, international = _region_prefixes(region)
    if cleaned[0] == "+":
        return _international(cleaned[1:])
    if international and cleaned.startswith(international):
        return _international(cleaned[len(international) :])
    if trunk and cleaned.startswith(trunk) and cleaned.isdigit():
        return _valid(country_code, cleaned[len(trunk) :])
    return None


def _international(digits: str) -> str | None:
    if not digits.isdigit() or digits[0] == "0":
        return None
    for length in (1, 2, 3):
        code = int(digits[:length])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            return _valid(code, digits[length:])
    return None


def _valid(country_code: int, national: str) -> str | None:
    if not national or national[0] == "0" or len(national) > _MAX_DIGITS:
        return None
    number = PhoneNumber(country_code=country_code, national_number=int(national))
    if phonenumbers.is_valid_number(number):
        return f"+{country_code}{national}"
    return None


def _full_parse(cleaned: str, region: str) -> str | None:
    candidates = [cleaned]
    if cleaned.isdigit() and len(cleaned) >= 10:
        candidates.append("+" + cleaned)  # spreadsheets drop the "+" of international numbers
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None
