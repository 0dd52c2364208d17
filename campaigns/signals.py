"""What the campaign services tell the sending engine, without importing it: services sit below
the engine and the engine listens (receivers connected in CampaignsConfig.ready).

Each is sent after the transaction that caused it commits.
"""

from django.dispatch import Signal

# A campaign may have work for its senders now (launched, resumed, a contact requeued).
campaign_wants_sending = Signal()  # campaign_id
# A sender was stopped from outside its slice (another number's error, a webhook, a person).
sender_stopped = Signal()  # sender_id
# Campaign, sender or template state changed: running slices re-read theirs before sending on.
engine_state_changed = Signal()
campaign_scheduled = Signal()  # when: the campaign should start at this time
