"""The campaigns API: `setup` (drafts, upload, senders, mapping, preview) and `lifecycle`."""
