"""The import's fast phone path must agree with phonenumbers' full parser, number for number."""

import os
import random
import subprocess
import sys

import phonenumbers
import pytest

from campaigns.importing.phones import normalize_phone, region_choices
from campaigns.importing.region_names import REGION_NAMES


def reference(raw: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mutated_examples(rng: random.Random) -> list[str]:
    """Numbers near every region's example mobile and fixed-line numbers, valid and not."""
    samples = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            digits = str(example.national_number)
            for _ in range(12):
                keep = rng.randint(1, 4)
                tail = "".join(rng.choice("0123456789") for _ in digits[keep:])
                national = (digits[:keep] + tail)[: len(digits) - (rng.random() < 0.2)]
                samples.append(f"+{example.country_code}{national}")
                samples.append(f"00{example.country_code} {national}")
    return samples


def test_fast_path_matches_phonenumbers_for_every_region():
    samples = mutated_examples(random.Random(4))
    mismatches = [s for s in samples if normalize_phone(s, "AE") != reference(s, "AE")]

    assert len(samples) > 5000
    assert mismatches == []


@pytest.mark.parametrize("region", ["AE", "GB", "DE", "IN", "SA", "US"])
def test_national_numbers_read_in_the_default_region(region):
    rng = random.Random(region)
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    digits = str(example.national_number)
    samples = ["0" + digits[:2] + str(rng.randrange(10 ** (len(digits) - 2))) for _ in range(300)]
    samples += [digits[:3] + " " + digits[3:], "(" + digits[:3] + ") " + digits[3:]]

    assert [normalize_phone(s, region) for s in samples] == [reference(s, region) for s in samples]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+971 50 123 4567", "+971501234567"),
        ("050-123-4567", "+971501234567"),
        ("00971501234567", "+971501234567"),
        ("971501234567", "+971501234567"),
        ("+44 7911 123456", "+447911123456"),
        ("+1 415 555 2671", "+14155552671"),
        ("12345", None),
        ("", None),
        ("call me", None),
    ],
)
def test_common_spreadsheet_spellings(raw, expected):
    assert normalize_phone(raw, "AE") == expected


def test_the_region_select_names_every_region_as_phonenumbers_does():
    from phonenumbers.geocoder import _region_display_name

    assert set(REGION_NAMES) == set(phonenumbers.SUPPORTED_REGIONS)
    assert {code: _region_display_name(code, "en") or code for code in REGION_NAMES} == REGION_NAMES
    assert ("AE", "United Arab Emirates (+971)") in region_choices()


def test_no_process_loads_the_geocoder():
    # Its data costs about 100 MB in every web and worker process.
    code = "import django, sys; django.setup(); print('phonenumbers.geocoder' in sys.modules)"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "titanflow.settings"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert run.stdout.strip() == "False", run.stderr
