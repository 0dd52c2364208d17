"""Cross-model inbox workflows: `ingest` (incoming messages and their statuses), `replies`."""
