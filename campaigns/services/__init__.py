"""Cross-model campaign workflows, one module per capability:

- `optouts`: the opt-out list.
- `setup`: drafts, senders and their ordered templates, variable mapping, preview.
- `importing`: turning an uploaded spreadsheet into contacts.
- `lifecycle`: launch, schedule, pause, resume, cancel, complete, retry failed, retarget.
- `statuses`: applying Meta's delivery statuses to messages and counters.
- `failures`: how a failed send or failed status moves templates, senders and contacts.
"""
