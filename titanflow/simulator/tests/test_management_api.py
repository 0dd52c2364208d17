import pytest

from titanflow.simulator.demo import demo_world_dict
from titanflow.simulator.testing import start_simulator
from titanflow.simulator.tests.helpers import PHONE, WABA, error_code, graph_get


def _follow(url: str, path: str, **params) -> list[dict]:
    """Every page of a Graph listing, by following `paging.next` to the end."""
    pages = [graph_get(url, path, **params).json()]
    while "next" in pages[-1].get("paging", {}):
        pages.append(graph_get(url, pages[-1]["paging"]["next"]).json())
    return pages


def test_template_listing_arrives_whole_across_pages(simulator):
    pages = _follow(simulator.url, f"{WABA}/message_templates", limit=3)

    names = [(t["name"], t["language"]) for page in pages for t in page["data"]]
    expected = [(t["name"], t["language"]) for t in demo_world_dict()["templates"]]
    assert len(pages) == 4  # 10 templates, 3 per page
    assert names == expected
    assert all(len(page["data"]) <= 3 for page in pages)
    assert "next" not in pages[-1]["paging"]
    assert {"before", "after"} <= set(pages[0]["paging"]["cursors"])


def test_next_links_point_at_the_simulator_and_keep_the_query(simulator):
    page = graph_get(simulator.url, f"{WABA}/message_templates", limit=2, fields="name").json()

    assert page["paging"]["next"].startswith(simulator.url + "/v23.0/")
    assert set(page["data"][0]) == {"id", "name"}
    second = graph_get(simulator.url, page["paging"]["next"]).json()
    assert set(second["data"][0]) == {"id", "name"}


def test_templates_carry_what_sync_needs(simulator):
    fields = "id,name,status,category,language,components,parameter_format,quality_score"
    data = graph_get(simulator.url, f"{WABA}/message_templates", fields=fields, limit=100).json()

    by_name = {(t["name"], t["language"]): t for t in data["data"]}
    assert by_name[("winter_clearance", "en_US")]["status"] == "PAUSED"
    assert by_name[("mystery_box", "en_US")]["status"] == "REJECTED"
    assert by_name[("welcome_member", "en_US")]["parameter_format"] == "NAMED"
    assert by_name[("order_update", "en_US")]["quality_score"]["score"] == "GREEN"
    assert by_name[("spring_sale", "ar")]["components"][0]["format"] == "IMAGE"


def test_template_listing_filters_like_graph(simulator):
    data = graph_get(simulator.url, f"{WABA}/message_templates", status="PAUSED").json()["data"]
    arabic = graph_get(simulator.url, f"{WABA}/message_templates", language="ar").json()["data"]

    assert [t["name"] for t in data] == ["winter_clearance"]
    assert {t["name"] for t in arabic} == {"order_update", "spring_sale"}


def test_a_listing_bigger_than_one_page_survives_a_cursor_round_trip():
    world = demo_world_dict()
    world["templates"] = [
        {"waba_id": WABA, "name": f"t{i:03d}", "language": "en_US"} for i in range(250)
    ]
    with start_simulator(world=world) as meta:
        pages = _follow(meta.url, f"{WABA}/message_templates", limit=100)

    names = [t["name"] for page in pages for t in page["data"]]
    assert [len(p["data"]) for p in pages] == [100, 100, 50]
    assert names == [f"t{i:03d}" for i in range(250)]


def test_phone_number_listing_pages_too(simulator):
    pages = _follow(simulator.url, f"{WABA}/phone_numbers", limit=2)

    ids = [p["id"] for page in pages for p in page["data"]]
    assert ids == ["200000000000001", "200000000000002", "200000000000003"]
    assert pages[0]["data"][0]["throughput"] == {"level": "STANDARD"}


def test_one_phone_number_answers_the_requested_fields(simulator):
    fields = (
        "display_phone_number,verified_name,quality_rating,status,throughput{level},"
        "whatsapp_business_manager_messaging_limit"
    )
    phone = graph_get(simulator.url, "200000000000002", fields=fields).json()

    assert phone == {
        "id": "200000000000002",
        "display_phone_number": "+971 50 100 0002",
        "verified_name": "Demo Retail",
        "quality_rating": "YELLOW",
        "status": "CONNECTED",
        "throughput": {"level": "STANDARD"},
        "whatsapp_business_manager_messaging_limit": "TIER_2K",
    }


def test_the_waba_answers_its_id_and_name(simulator):
    assert graph_get(simulator.url, WABA).json() == {"id": WABA, "name": "Demo Retail"}


@pytest.mark.parametrize(
    "path", [WABA, PHONE, f"{WABA}/message_templates", f"{WABA}/phone_numbers"]
)
def test_management_reads_need_the_accounts_token(simulator, path):
    response = graph_get(simulator.url, path, token="someone-else")

    assert (response.status_code, error_code(response)) == (401, 190)


def test_the_token_may_come_as_a_query_parameter_like_graphs_next_links(simulator):
    response = graph_get(simulator.url, WABA, token=None, access_token="demo-token")

    assert response.status_code == 200


def test_a_bad_cursor_is_a_graph_error(simulator):
    response = graph_get(simulator.url, f"{WABA}/message_templates", after="garbage")

    assert (response.status_code, error_code(response)) == (400, 100)
