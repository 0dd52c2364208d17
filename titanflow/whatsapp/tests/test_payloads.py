import json

import pytest

from titanflow.whatsapp.payloads import (
    MissingVariableError,
    Slot,
    UnsupportedTemplateError,
    build_template_payload,
    encode_payload,
    example_values,
    highlight_preview,
    missing_slots,
    parse_slots,
    payload_values,
    render_preview,
    resolve_values,
)

SPRING_SALE = [
    {
        "type": "HEADER",
        "format": "TEXT",
        "text": "Hello {{1}}!",
        "example": {"header_text": ["Ana"]},
    },
    {
        "type": "BODY",
        "text": "Hi {{1}}, take {{2}} off with code {{1}}-VIP.",
        "example": {"body_text": [["Ana", "25%"]]},
    },
    {"type": "FOOTER", "text": "Reply STOP to opt out"},
]

TEN_VARIABLES = [
    {"type": "BODY", "text": " ".join(f"<{{{{{n}}}}}>" for n in (10, 2, 1, 9, 3, 4, 5, 6, 7, 8))}
]

NAMED = [
    {
        "type": "HEADER",
        "format": "TEXT",
        "text": "Hi {{first_name}}",
        "example": {"header_text_named_params": [{"param_name": "first_name", "example": "Ana"}]},
    },
    {
        "type": "BODY",
        "text": "{{first_name}}, your order {{order_id}} ships {{ day }}.",
        "example": {
            "body_text_named_params": [
                {"param_name": "first_name", "example": "Ana"},
                {"param_name": "order_id", "example": "A-1"},
                {"param_name": "day", "example": "today"},
            ]
        },
    },
]

BUTTONS = [
    {"type": "BODY", "text": "Your cart awaits, {{1}}."},
    {
        "type": "BUTTONS",
        "buttons": [
            {"type": "QUICK_REPLY", "text": "Stop promotions"},
            {
                "type": "URL",
                "text": "Open cart",
                "url": "https://shop.example/cart/{{1}}",
                "example": ["https://shop.example/cart/abc"],
            },
            {"type": "COPY_CODE", "example": "SAVE10"},
            {"type": "URL", "text": "Help", "url": "https://shop.example/help"},
        ],
    },
]


def build(components, values, *, parameter_format="POSITIONAL", **extra):
    return build_template_payload(
        name=extra.pop("name", "spring_sale"),
        language="en_US",
        components=components,
        parameter_format=parameter_format,
        values=values,
        to=extra.pop("to", "+971501234567"),
        **extra,
    )


def test_positional_template_payload_is_exactly_what_meta_expects():
    values = {"header.1": "Ana", "body.1": "Ana", "body.2": "25%"}

    payload = build(SPRING_SALE, values, callback_data="m:12345")

    assert payload == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "971501234567",
        "type": "template",
        "biz_opaque_callback_data": "m:12345",
        "template": {
            "name": "spring_sale",
            "language": {"code": "en_US", "policy": "deterministic"},
            "components": [
                {"type": "header", "parameters": [{"type": "text", "text": "Ana"}]},
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Ana"},
                        {"type": "text", "text": "25%"},
                    ],
                },
            ],
        },
    }


def test_positional_slots_come_with_their_examples():
    slots = parse_slots(SPRING_SALE)

    assert [(s.key, s.component, s.kind, s.name, s.example) for s in slots] == [
        ("header.1", "header", "text", "1", "Ana"),
        ("body.1", "body", "text", "1", "Ana"),
        ("body.2", "body", "text", "2", "25%"),
    ]


def test_tenth_variable_comes_after_the_ninth():
    values = {f"body.{n}": f"v{n}" for n in range(1, 11)}

    slots = parse_slots(TEN_VARIABLES)
    [body] = build(TEN_VARIABLES, values)["template"]["components"]

    assert [s.key for s in slots] == [f"body.{n}" for n in range(1, 11)]
    assert [p["text"] for p in body["parameters"]] == [f"v{n}" for n in range(1, 11)]


def test_named_template_sends_parameter_names():
    values = {
        "header.first_name": "Ana",
        "body.first_name": "Ana",
        "body.order_id": "A-7",
        "body.day": "Monday",
    }

    payload = build(NAMED, values, parameter_format="NAMED")

    header, body = payload["template"]["components"]
    assert header["parameters"] == [{"type": "text", "parameter_name": "first_name", "text": "Ana"}]
    assert body["parameters"] == [
        {"type": "text", "parameter_name": "first_name", "text": "Ana"},
        {"type": "text", "parameter_name": "order_id", "text": "A-7"},
        {"type": "text", "parameter_name": "day", "text": "Monday"},
    ]
    assert [s.example for s in parse_slots(NAMED, "NAMED")] == ["Ana", "Ana", "A-1", "today"]


@pytest.mark.parametrize("media", ["IMAGE", "VIDEO", "DOCUMENT"])
def test_media_header_sends_a_link_of_the_template_media_type(media):
    components = [{"type": "HEADER", "format": media}, {"type": "BODY", "text": "Hello"}]
    link = "https://cdn.example/spring.bin"

    [slot] = parse_slots(components)
    payload = build(components, {"header.media": link})

    kind = media.lower()
    assert (slot.key, slot.kind) == ("header.media", kind)
    assert payload["template"]["components"] == [
        {"type": "header", "parameters": [{"type": kind, kind: {"link": link}}]}
    ]


def test_location_header_sends_one_location_parameter():
    components = [{"type": "HEADER", "format": "LOCATION"}, {"type": "BODY", "text": "See you"}]
    values = {
        "header.location.latitude": "25.2048",
        "header.location.longitude": "55.2708",
        "header.location.name": "Dubai Mall",
        "header.location.address": "Downtown Dubai",
    }

    payload = build(components, values)

    assert [s.key for s in parse_slots(components)] == list(values)
    assert payload["template"]["components"] == [
        {
            "type": "header",
            "parameters": [
                {
                    "type": "location",
                    "location": {
                        "latitude": "25.2048",
                        "longitude": "55.2708",
                        "name": "Dubai Mall",
                        "address": "Downtown Dubai",
                    },
                }
            ],
        }
    ]


def test_buttons_are_indexed_among_all_buttons():
    values = {"body.1": "Ana", "button.1.1": "abc-123", "button.2.code": "SAVE10"}

    slots = parse_slots(BUTTONS)
    payload = build(BUTTONS, values)

    assert [(s.key, s.button_index, s.button_sub_type) for s in slots] == [
        ("body.1", None, None),
        ("button.1.1", 1, "url"),
        ("button.2.code", 2, "copy_code"),
    ]
    assert payload["template"]["components"][1:] == [
        {
            "type": "button",
            "sub_type": "url",
            "index": "1",
            "parameters": [{"type": "text", "text": "abc-123"}],
        },
        {
            "type": "button",
            "sub_type": "copy_code",
            "index": "2",
            "parameters": [{"type": "coupon_code", "coupon_code": "SAVE10"}],
        },
    ]


MEDIA_AND_LOCATION = [
    [{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "Hi {{1}}"}],
    [{"type": "HEADER", "format": "LOCATION"}, {"type": "BODY", "text": "See you"}],
]


@pytest.mark.parametrize(
    ("components", "values", "parameter_format"),
    [
        (SPRING_SALE, {"header.1": "Ana", "body.1": "Ana", "body.2": "25%"}, "POSITIONAL"),
        (
            NAMED,
            {
                "header.first_name": "Bo",
                "body.first_name": "Bo",
                "body.order_id": "A-7",
                "body.day": "now",
            },
            "NAMED",
        ),
        (
            BUTTONS,
            {"body.1": "Ana", "button.1.1": "abc-123", "button.2.code": "SAVE10"},
            "POSITIONAL",
        ),
        (
            MEDIA_AND_LOCATION[0],
            {"header.media": "https://cdn.example/a.png", "body.1": "Cy"},
            "POSITIONAL",
        ),
        (
            MEDIA_AND_LOCATION[1],
            {
                "header.location.latitude": "25.2",
                "header.location.longitude": "55.3",
                "header.location.name": "Dubai Mall",
                "header.location.address": "Downtown",
            },
            "POSITIONAL",
        ),
    ],
)
def test_a_sent_payload_gives_back_the_values_it_was_built_from(
    components, values, parameter_format
):
    slots = parse_slots(components, parameter_format)
    payload = build(components, values, parameter_format=parameter_format)

    sent = json.loads(encode_payload(payload))

    assert payload_values(sent, slots) == values


def test_a_payload_without_components_gives_no_values():
    assert payload_values({}, parse_slots(SPRING_SALE)) == {}


def test_template_without_variables_sends_no_components():
    payload = build([{"type": "BODY", "text": "Hello!"}], {})

    assert "components" not in payload["template"]
    assert "biz_opaque_callback_data" not in payload


def test_recipient_is_sent_as_digits_only():
    assert build(SPRING_SALE[2:], {}, to="+971 50 123-4567")["to"] == "971501234567"
    with pytest.raises(ValueError):
        build(SPRING_SALE[2:], {}, to="+")


def test_callback_data_longer_than_meta_allows_is_refused():
    with pytest.raises(ValueError):
        build(SPRING_SALE[2:], {}, callback_data="x" * 513)


def test_missing_or_blank_values_are_refused_with_their_keys():
    with pytest.raises(MissingVariableError) as caught:
        build(SPRING_SALE, {"header.1": "Ana", "body.1": "  "})

    assert caught.value.slot_keys == ["body.1", "body.2"]


def test_values_are_flattened_because_meta_refuses_newlines_and_tabs():
    payload = build(
        SPRING_SALE, {"header.1": "Ana", "body.1": " Ana\n\tMaria ", "body.2": "25%     off"}
    )

    body = payload["template"]["components"][1]["parameters"]
    assert [p["text"] for p in body] == ["Ana Maria", "25% off"]


def test_values_come_from_columns_fixed_texts_and_defaults():
    slots = parse_slots(SPRING_SALE)
    mapping = {
        "header.1": {"column": "name", "default": "friend"},
        "body.1": {"column": "name"},
        "body.2": {"text": "25%"},
    }

    assert resolve_values(slots, mapping, {"name": "Ana"}) == {
        "header.1": "Ana",
        "body.1": "Ana",
        "body.2": "25%",
    }
    assert resolve_values(slots, mapping, {"name": " "}) == {
        "header.1": "friend",
        "body.1": "",
        "body.2": "25%",
    }


def test_missing_slots_lists_unmapped_and_blank_slots():
    slots = parse_slots(SPRING_SALE)
    mapping = {"header.1": {"column": "name"}, "body.1": {"column": "city"}}

    assert missing_slots(slots, mapping, {"name": "Ana", "city": ""}) == ["body.1", "body.2"]
    assert (
        missing_slots(slots, {**mapping, "body.2": {"text": "5%"}}, {"name": "Ana", "city": "Rome"})
        == []
    )


def test_encoded_payload_is_compact_utf8_and_stable():
    payload = build(SPRING_SALE, {"header.1": "Zoë", "body.1": "Zoë", "body.2": "٪25"})

    encoded = encode_payload(payload)

    assert encoded == encode_payload(json.loads(encoded))
    assert json.loads(encoded) == payload
    assert b", " not in encoded and b": " not in encoded
    assert "Zoë".encode() in encoded and b"\\u" not in encoded


def test_slots_survive_the_trip_through_json():
    slots = parse_slots(BUTTONS)

    stored = json.loads(json.dumps([slot.to_dict() for slot in slots]))

    assert [Slot.from_dict(data) for data in stored] == slots


def test_parsed_slots_can_be_passed_in_to_skip_parsing():
    slots = parse_slots(SPRING_SALE)
    values = {"header.1": "Ana", "body.1": "Ana", "body.2": "25%"}

    assert build(SPRING_SALE, values, slots=slots) == build(SPRING_SALE, values)


@pytest.mark.parametrize(
    "components",
    [
        [{"type": "BODY", "text": "Hi {{1}}"}, {"type": "CAROUSEL", "cards": []}],
        [{"type": "HEADER", "format": "PRODUCT"}, {"type": "BODY", "text": "Look"}],
        [{"type": "BODY", "add_security_recommendation": True}],
        [{"type": "BODY", "text": "Code"}, {"type": "BUTTONS", "buttons": [{"type": "OTP"}]}],
        [{"type": "BODY", "text": "Shop"}, {"type": "BUTTONS", "buttons": [{"type": "CATALOG"}]}],
        [
            {
                "type": "LIMITED_TIME_OFFER",
                "limited_time_offer": {"text": "Hurry", "has_expiration": True},
            },
            {"type": "BODY", "text": "Deal"},
        ],
        [{"type": "BODY", "text": "Hi {{name}}"}],  # named variable in a positional template
    ],
)
def test_templates_campaigns_cannot_fill_are_reported_unsupported(components):
    with pytest.raises(UnsupportedTemplateError) as caught:
        parse_slots(components)
    assert str(caught.value)
    render_preview(components, {})  # pages still show them


def test_limited_time_offer_without_expiry_is_supported():
    components = [
        {
            "type": "LIMITED_TIME_OFFER",
            "limited_time_offer": {"text": "Hurry", "has_expiration": False},
        },
        {"type": "BODY", "text": "Deal for {{1}}"},
    ]

    payload = build(components, {"body.1": "Ana"})

    assert payload["template"]["components"] == [
        {"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}
    ]


def test_preview_fills_variables_and_keeps_unfilled_ones_visible():
    preview = render_preview(SPRING_SALE, {"header.1": "Ana", "body.1": "Ana"})

    assert preview == [
        {"type": "HEADER", "format": "TEXT", "text": "Hello Ana!"},
        {"type": "BODY", "format": "", "text": "Hi Ana, take {{2}} off with code Ana-VIP."},
        {"type": "FOOTER", "format": "", "text": "Reply STOP to opt out"},
    ]


def test_highlighted_preview_marks_where_variables_went():
    header, body, _ = highlight_preview(SPRING_SALE, {"header.1": "Ana", "body.2": "25%"})

    assert header["segments"] == [("Hello ", False), ("Ana", True), ("!", False)]
    assert body["segments"] == [
        ("Hi ", False),
        ("{{1}}", True),
        (", take ", False),
        ("25%", True),
        (" off with code ", False),
        ("{{1}}", True),
        ("-VIP.", False),
    ]


def test_preview_shows_button_links_and_coupon_code():
    [_, buttons] = render_preview(BUTTONS, {"button.1.1": "abc", "button.2.code": "SAVE10"})

    assert buttons["buttons"] == [
        {"type": "QUICK_REPLY", "text": "Stop promotions", "url": "", "code": ""},
        {"type": "URL", "text": "Open cart", "url": "https://shop.example/cart/abc", "code": ""},
        {"type": "COPY_CODE", "text": "Copy code", "url": "", "code": "SAVE10"},
        {"type": "URL", "text": "Help", "url": "https://shop.example/help", "code": ""},
    ]


def test_slot_labels_name_the_variable_for_marketers():
    labels = [s.label for s in parse_slots(SPRING_SALE) + parse_slots(BUTTONS)]

    assert labels == [
        "Header {{1}}",
        "Body {{1}}",
        "Body {{2}}",
        "Body {{1}}",
        "Button 2 link {{1}}",
        "Button 3 coupon code",
    ]


# -- Meta's real template definitions (from pywa), when ../shared is present --------------------


def real_templates(shared_dir):
    folder = shared_dir / "fixtures" / "meta-templates-pywa"
    return {
        name: template
        for path in sorted(folder.glob("*.json"))
        for name, template in json.loads(path.read_text()).items()
    }


def test_every_real_template_parses_or_is_reported_unsupported(shared_dir):
    supported, unsupported = set(), set()
    for name, template in real_templates(shared_dir).items():
        render_preview(template["components"], {})
        try:
            slots = parse_slots(
                template["components"], template.get("parameter_format", "POSITIONAL")
            )
        except UnsupportedTemplateError:
            unsupported.add(name)
            continue
        values = {s.key: s.example or "https://cdn.example/file.pdf" for s in slots}
        payload = build(template["components"], values, name=name)
        assert json.loads(encode_payload(payload)) == payload
        supported.add(name)

    assert {
        "seasonal_promotion",
        "order_confirmation",
        "order_delivery_update",
        "coupon_code_fall2023_25off",
    } <= supported
    assert {
        "carousel_template_media_cards_v1",
        "authentication_code_copy_code_button",
        "abandoned_cart_offer",
        "limited_time_offer_caribbean_pkg_2023",
    } <= unsupported


def test_real_text_header_template_builds_with_its_examples(shared_dir):
    template = real_templates(shared_dir)["seasonal_promotion"]
    slots = parse_slots(template["components"])

    payload = build(template["components"], example_values(slots), name="seasonal_promotion")

    assert payload["template"]["components"] == [
        {"type": "header", "parameters": [{"type": "text", "text": "Summer Sale"}]},
        {
            "type": "body",
            "parameters": [
                {"type": "text", "text": "the end of August"},
                {"type": "text", "text": "25OFF"},
                {"type": "text", "text": "25%"},
            ],
        },
    ]


def test_real_document_header_template_needs_only_the_link_and_body(shared_dir):
    template = real_templates(shared_dir)["order_confirmation"]

    slots = parse_slots(template["components"])

    # The URL button has no variable, and the upload handle is no usable example link.
    assert [(s.key, s.kind, s.example) for s in slots] == [
        ("header.media", "document", ""),
        ("body.1", "text", "Pablo"),
        ("body.2", "text", "860198-230332"),
    ]


def test_real_location_template_asks_for_the_four_location_fields(shared_dir):
    template = real_templates(shared_dir)["order_delivery_update"]

    keys = [s.key for s in parse_slots(template["components"])]

    assert keys[:4] == [
        "header.location.latitude",
        "header.location.longitude",
        "header.location.name",
        "header.location.address",
    ]


def test_real_coupon_template_puts_the_code_on_the_second_button(shared_dir):
    template = real_templates(shared_dir)["coupon_code_fall2023_25off"]
    slots = parse_slots(template["components"])

    payload = build(template["components"], example_values(slots))

    assert payload["template"]["components"][-1] == {
        "type": "button",
        "sub_type": "copy_code",
        "index": "1",
        "parameters": [{"type": "coupon_code", "coupon_code": "250FF"}],
    }
