"""A local stand-in for Meta's WhatsApp Cloud API, for the demo, the tests and the benchmark.

It imports no Django app (only the shared signature helper), so it can run anywhere:
`manage.py meta_simulator` serves it, `titanflow.simulator.testing.start_simulator()` runs it
inside a test process. The scenario format and every option are documented in `scenario.py`.

Modules: `world` (accounts, phones, templates), `demo` (the default world), `validation`
(Meta's checks on a send), `scenario` (injected failures), `core` (the send path and counters),
`webhooks` and `payloads` (signed deliveries), `graph` and `control` (the HTTP endpoints), `app`.
"""
