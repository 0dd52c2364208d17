"""`{% if user|may:"campaign.change" %}`: templates offer only what titanflow.access allows."""

from django import template

from titanflow.access import can

register = template.Library()


@register.filter
def may(user, action: str) -> bool:
    return can(user, action)
