"""Phone numbers to E.164. `phonenumbers.parse` + `is_valid_number` cost ~50 µs, too slow for a
million rows, so the common shapes (+<cc><number>, 00<cc><number>, national with a plain trunk
prefix) are split by hand and validated against phonenumbers' own metadata patterns, compiled
once per country; anything else (and every country code shared by several regions) takes
phonenumbers' full parser. tests/test_import_phones.py checks both paths agree."""

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, SUPPORTED_REGIONS, PhoneNumber
from phonenumbers.phonemetadata import PhoneMetadata

from campaigns.importing.region_names import REGION_NAMES

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
    validator = _validator(country_code)
    if validator is not None:
        valid = validator(national)
    else:
        number = PhoneNumber(country_code=country_code, national_number=int(national))
        valid = phonenumbers.is_valid_number(number)
    return f"+{country_code}{national}" if valid else None


# Validity only asks whether ANY type matches, so the common types go first.
_TYPE_DESCS = (
    "mobile",
    "fixed_line",
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
)


def _compiled(desc) -> tuple[frozenset, re.Pattern] | None:
    if desc is None or not desc.national_number_pattern:
        return None
    return frozenset(desc.possible_length or ()), re.compile(desc.national_number_pattern)


def _matches(national: str, compiled) -> bool:
    lengths, pattern = compiled
    return (not lengths or len(national) in lengths) and pattern.fullmatch(national) is not None


@lru_cache(maxsize=300)
def _validator(country_code: int):
    """phonenumbers' validity rule (the general pattern, then any number type) for a country
    code that belongs to one region; None for shared codes (+1, +7, +44...)."""
    regions = COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    if len(regions) != 1:
        return None
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, regions[0])
    general = _compiled(metadata.general_desc) if metadata else None
    if general is None:
        return None
    types = [c for c in (_compiled(getattr(metadata, n)) for n in _TYPE_DESCS) if c]

    def is_valid(national: str) -> bool:
        return _matches(national, general) and any(_matches(national, t) for t in types)

    return is_valid


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


def is_region(code: str) -> bool:
    return code in SUPPORTED_REGIONS


@lru_cache(maxsize=1)
def region_choices() -> tuple[tuple[str, str], ...]:
    """Every region phonenumbers reads, as (code, "United Arab Emirates (+971)"), by name."""
    named = []
    for code in SUPPORTED_REGIONS:
        name = REGION_NAMES.get(code, code)
        country_code = phonenumbers.country_code_for_region(code)
        named.append((code, f"{name} (+{country_code})"))
    return tuple(sorted(named, key=lambda choice: choice[1]))
