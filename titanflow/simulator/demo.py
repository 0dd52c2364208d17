"""The demo world: "Demo Retail", a UAE shop with three numbers and the templates a shop keeps.

The templates cover every shape TitanFlow must fill: a text header with a positional body, a named
body, image and document headers, a URL button with a variable, a copy-code button, Arabic, ten
body variables, a link in a body variable (click tracking), and the statuses a campaign must
survive (one PAUSED, one REJECTED).
"""

DEMO_WABA = "100000000000001"
DEMO_PHONES = ("200000000000001", "200000000000002", "200000000000003")


def demo_world_dict(*, access_token: str = "demo-token") -> dict:
    return {
        "accounts": [{"waba_id": DEMO_WABA, "name": "Demo Retail", "access_token": access_token}],
        "phones": [
            _phone(DEMO_PHONES[0], "+971 50 100 0001", "GREEN", "TIER_10K"),
            _phone(DEMO_PHONES[1], "+971 50 100 0002", "YELLOW", "TIER_2K"),
            _phone(DEMO_PHONES[2], "+971 50 100 0003", "RED", "TIER_250"),
        ],
        "templates": [
            {"id": str(300000000000001 + i), "waba_id": DEMO_WABA, **template}
            for i, template in enumerate(_TEMPLATES)
        ],
    }


def _phone(phone_number_id: str, display: str, quality: str, limit: str) -> dict:
    return {
        "phone_number_id": phone_number_id,
        "waba_id": DEMO_WABA,
        "display_phone_number": display,
        "verified_name": "Demo Retail",
        "quality_rating": quality,
        "status": "CONNECTED",
        "throughput_level": "STANDARD",
        "messaging_limit": limit,
        "max_mps": 80,
    }


def _body(text: str, *examples: str) -> dict:
    return {"type": "BODY", "text": text, "example": {"body_text": [list(examples)]}}


_SHOP = "https://shop.example.com"
_QUICK_REPLY_STOP = {"type": "QUICK_REPLY", "text": "Stop promotions"}

_TEMPLATES = [
    {
        "name": "order_update",
        "language": "en_US",
        "category": "UTILITY",
        "components": [
            {
                "type": "HEADER",
                "format": "TEXT",
                "text": "Order {{1}}",
                "example": {"header_text": ["A-10423"]},
            },
            _body("Hi {{1}}, your order {{2}} will arrive on {{3}}.", "Ana", "A-10423", "12 March"),
            {"type": "FOOTER", "text": "Demo Retail"},
        ],
    },
    {
        "name": "order_update",
        "language": "ar",
        "category": "UTILITY",
        "components": [
            {
                "type": "HEADER",
                "format": "TEXT",
                "text": "الطلب {{1}}",
                "example": {"header_text": ["A-10423"]},
            },
            _body("مرحبا {{1}}، سيصل طلبك {{2}} في {{3}}.", "أنا", "A-10423", "12 مارس"),
        ],
    },
    {
        "name": "spring_sale",
        "language": "en_US",
        "category": "MARKETING",
        "components": [
            {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1hZ2U="]}},
            _body("{{1}}, enjoy {{2}} off everything this week!", "Ana", "25%"),
            {
                "type": "BUTTONS",
                "buttons": [
                    {
                        "type": "URL",
                        "text": "Shop now",
                        "url": _SHOP + "/sale?c={{1}}",
                        "example": [_SHOP + "/sale?c=SPRING25"],
                    },
                    _QUICK_REPLY_STOP,
                ],
            },
        ],
    },
    {
        "name": "spring_sale",
        "language": "ar",
        "category": "MARKETING",
        "components": [
            {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1hZ2U="]}},
            _body("{{1}}، استمتع بخصم {{2}} على كل شيء هذا الأسبوع!", "أنا", "25%"),
            {
                "type": "BUTTONS",
                "buttons": [
                    {
                        "type": "URL",
                        "text": "تسوق الآن",
                        "url": _SHOP + "/ar/sale?c={{1}}",
                        "example": [_SHOP + "/ar/sale?c=SPRING25"],
                    }
                ],
            },
        ],
    },
    {
        "name": "welcome_member",
        "language": "en_US",
        "category": "MARKETING",
        "parameter_format": "NAMED",
        "components": [
            {
                "type": "BODY",
                "text": "Welcome {{first_name}}! Your member number is {{member_number}}.",
                "example": {
                    "body_text_named_params": [
                        {"param_name": "first_name", "example": "Ana"},
                        {"param_name": "member_number", "example": "M-5521"},
                    ]
                },
            }
        ],
    },
    {
        "name": "invoice_ready",
        "language": "en_US",
        "category": "UTILITY",
        "components": [
            {"type": "HEADER", "format": "DOCUMENT", "example": {"header_handle": ["4::cGRm"]}},
            _body("Hi {{1}}, invoice {{2}} for {{3}} is attached.", "Ana", "INV-88", "AED 240"),
        ],
    },
    {
        "name": "coupon_code",
        "language": "en_US",
        "category": "MARKETING",
        "components": [
            _body("{{1}}, here is {{2}} off your next order. Tap to copy the code.", "Ana", "15%"),
            {
                "type": "BUTTONS",
                "buttons": [{"type": "COPY_CODE", "example": "SAVE15"}, _QUICK_REPLY_STOP],
            },
        ],
    },
    {
        "name": "loyalty_statement",
        "language": "en_US",
        "category": "UTILITY",
        "components": [
            _body(
                "{{1}}, your statement for {{2}}: opening {{3}} points, earned {{4}}, "
                "redeemed {{5}}, expired {{6}}, closing {{7}}. Tier {{8}}, next tier at {{9}}. "
                "Ref {{10}}.",
                *("Ana", "March", "120", "80", "40", "0", "160", "Silver", "500", "LS-77"),
            )
        ],
    },
    {
        "name": "winter_clearance",
        "language": "en_US",
        "category": "MARKETING",
        "status": "PAUSED",
        "quality_score": "RED",
        "components": [_body("{{1}}, winter stock is going fast!", "Ana")],
    },
    {
        "name": "mystery_box",
        "language": "en_US",
        "category": "MARKETING",
        "status": "REJECTED",
        "quality_score": "UNKNOWN",
        "components": [_body("{{1}}, claim your free mystery box today!!!", "Ana")],
    },
    {
        # A link in a body variable: tracked through /r/<token> when the campaign tracks clicks.
        # Last, so the ids of the templates before it stay what earlier demos synced.
        "name": "sale_link",
        "language": "en_US",
        "category": "MARKETING",
        "components": [
            _body("{{1}}, the spring sale is on: {{2}}", "Ana", _SHOP + "/sale?c=SPRING25"),
            {"type": "BUTTONS", "buttons": [_QUICK_REPLY_STOP]},
        ],
    },
]
