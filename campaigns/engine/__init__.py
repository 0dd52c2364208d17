"""The sending engine: claims, pacing, one slice of sending per (campaign, sender), error reactions.

Postgres is the truth (contacts are the queue); Redis only paces, locks and caches, so a Redis
restart loses no campaign state.
"""
