"""Signals templates_app sends so higher floors can react without templates_app importing them."""

from django.dispatch import Signal

# Sent after a template webhook's changes commit, with `template_ids: list[int]`: the engine drops
# its cached sendability for those templates at once (late binding).
template_status_changed = Signal()
# Sent after a number's quality, status or its portfolio's messaging limit changed (a webhook):
# running slices re-read their number before the next send (YELLOW slows, RED stops).
phone_health_changed = Signal()
# Sent after a `message_template_quality_update` commits, with `template_ids: list[int]` whose
# quality Meta now rates YELLOW or RED: campaigns note it on their timeline (no sendability change).
template_quality_changed = Signal()
