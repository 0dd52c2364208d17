from titanflow.simulator.clicks import message_links

TOKEN = "A" * 22
BUTTONS = [
    {
        "type": "BUTTONS",
        "buttons": [
            {"type": "URL", "url": "https://shop.example/sale?c={{1}}"},
            {"type": "URL", "url": "http://127.0.0.1:8000/r/{{1}}"},
        ],
    }
]


def test_a_reader_opens_short_links_in_the_body_and_buttons_and_nothing_else():
    sent = [
        {
            "type": "body",
            "parameters": [{"type": "text", "text": f"go http://t.example/r/{TOKEN}."}],
        },
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"text": "X1"}]},
        {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"text": TOKEN}]},
    ]

    assert message_links(sent, BUTTONS) == (
        f"http://t.example/r/{TOKEN}",
        f"http://127.0.0.1:8000/r/{TOKEN}",
    )
