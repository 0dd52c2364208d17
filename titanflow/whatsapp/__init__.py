"""The Graph API layer: client, error catalogue, template payloads, webhook signatures.

Imports no Django app, so every floor of the project (and the simulator) may use it.
"""
