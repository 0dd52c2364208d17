import pytest

from titanflow.simulator.demo import DEMO_PHONES, DEMO_WABA
from titanflow.simulator.testing import start_simulator
from titanflow.simulator.tests.helpers import send, template_send, text_send
from titanflow.simulator.world import World, WorldError, default_world


def test_the_demo_world_has_what_the_demo_needs():
    world = default_world()

    [account] = world.accounts.values()
    assert (account.waba_id, account.name, account.access_token) == (
        DEMO_WABA,
        "Demo Retail",
        "demo-token",
    )
    assert list(world.phones) == list(DEMO_PHONES)
    assert len({p.quality_rating for p in world.phones.values()}) == 3
    assert all(p.max_mps == 80 for p in world.phones.values())
    templates = list(world.templates.values())
    assert {t.language for t in templates} == {"en_US", "ar"}
    assert {t.status for t in templates} == {"APPROVED", "PAUSED", "REJECTED"}
    assert any(t.parameter_format == "NAMED" for t in templates)
    assert max(t.slots.body for t in templates) == 10
    assert {t.slots.header_media for t in templates} >= {"image", "document"}


def test_the_demo_token_can_be_chosen():
    assert default_world(access_token="other").accounts[DEMO_WABA].access_token == "other"


def test_max_mps_follows_the_throughput_level_unless_given():
    world = World.from_dict(
        {
            "accounts": [{"waba_id": "1"}],
            "phones": [
                {"phone_number_id": "a", "waba_id": "1", "throughput_level": "HIGH"},
                {"phone_number_id": "b", "waba_id": "1"},
                {"phone_number_id": "c", "waba_id": "1", "max_mps": 20},
            ],
        }
    )

    assert [p.max_mps for p in world.phones.values()] == [1000, 80, 20]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"accounts": [{"waba_id": "1", "token": "x"}]}, r"accounts\[0\].*token"),
        ({"phones": [{"phone_number_id": "9", "waba_id": "nope"}]}, r"phones\[0\].waba_id"),
        ({"accounts": [{"waba_id": 1}]}, r"accounts\[0\].waba_id.*str"),
        (
            {"accounts": [{"waba_id": "1"}], "templates": [{"waba_id": "1", "name": "x"}]},
            r"templates\[0\].*language",
        ),
        ({"planets": []}, "planets"),
    ],
)
def test_a_bad_world_names_the_entry_and_field(data, message):
    with pytest.raises(WorldError, match=message):
        World.from_dict(data)


def test_merging_a_template_makes_it_sendable(simulator):
    simulator.set_world(
        {"templates": [{"waba_id": DEMO_WABA, "name": "restock", "language": "en_US"}]}
    )

    assert send(simulator.url, template_send("9715", "restock", [])).status_code == 200


def test_replacing_the_world_drops_what_was_there(simulator):
    simulator.set_world(
        {
            "accounts": [{"waba_id": "5", "access_token": "t5"}],
            "phones": [{"phone_number_id": "55", "waba_id": "5"}],
        },
        replace=True,
    )

    gone = send(simulator.url, text_send("9715"), phone=DEMO_PHONES[0])
    assert gone.status_code == 401  # the demo account and its token are gone with it
    assert send(simulator.url, text_send("9715"), phone="55", token="t5").status_code == 200


def test_a_world_given_at_start_is_used():
    world = {"accounts": [{"waba_id": "5", "access_token": "t5"}], "phones": []}
    with start_simulator(world=world) as meta:
        assert meta.world()["accounts"] == [
            {"waba_id": "5", "name": "", "access_token": "t5", "messaging_limit": ""}
        ]
