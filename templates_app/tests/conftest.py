"""A Meta simulator with a world each test builds, and the settings that point TitanFlow at it."""

import pytest

from tests.factories import AccountFactory

WABA = "100000000000777"
TOKEN = "sync-token"


def template_item(index: int, **overrides) -> dict:
    """One template as the simulator's world holds it (Meta's shape once listed)."""
    return {
        "id": str(900000000000000 + index),
        "waba_id": WABA,
        "name": f"promo_{index:04d}",
        "language": "en_US",
        "category": "MARKETING",
        "status": "APPROVED",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Hi {{1}}"},
            {"type": "BODY", "text": "Hello {{1}}, {{2}} off today only."},
        ],
        **overrides,
    }


def build_world(*, templates: int = 3, phones: int = 2, **template_overrides) -> dict:
    return {
        "accounts": [{"waba_id": WABA, "name": "Sync Shop", "access_token": TOKEN}],
        "phones": [
            {
                "phone_number_id": f"20000000000077{i}",
                "waba_id": WABA,
                "display_phone_number": f"+971 50 777 000{i}",
                "verified_name": "Sync Shop",
                "quality_rating": "GREEN",
                "throughput_level": "HIGH" if i == 0 else "STANDARD",
                "messaging_limit": "TIER_10K",
            }
            for i in range(phones)
        ],
        "templates": [template_item(i, **template_overrides) for i in range(templates)],
    }


@pytest.fixture
def meta(settings):
    """A simulator holding `build_world()`; tests replace its world with `meta.set_world`."""
    from titanflow.simulator.testing import start_simulator

    with start_simulator(world=build_world()) as handle:
        settings.WHATSAPP_GRAPH_URL = handle.url
        yield handle


@pytest.fixture
def account(db):
    return AccountFactory(waba_id=WABA, name="Sync Shop", access_token=TOKEN)
