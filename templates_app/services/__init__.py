"""Meta asset workflows: syncing accounts, phone numbers and templates; applying Meta events."""
