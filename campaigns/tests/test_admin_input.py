"""Hostile values typed into the admin's campaign and contact forms: a message, never a 500."""

import pytest

from campaigns.models import Contact
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def _contact_form(contact, **changes):
    data = {
        "campaign": contact.campaign_id,
        "phone": contact.phone,
        "name": contact.name,
        "variables": '{"name": "Ana"}',
        "state": contact.state,
        "attempts": "0",
        "sending": "",
        "payload": "",
        "row_number": "1",
        "skip_reason": "",
        "last_error": "",
    }
    data.update(changes)
    return data


@pytest.mark.parametrize("variables", ['{"name": "A\\u0000na"}', '{"\\u0000": "x"}'])
def test_a_nul_in_a_contacts_json_is_refused_in_the_admin(client, staff_user, variables):
    contact = ContactFactory(name="Ana")
    client.force_login(staff_user)

    response = client.post(
        f"/admin/campaigns/contact/{contact.pk}/change/",
        _contact_form(contact, variables=variables),
    )

    assert response.status_code == 200
    assert "NUL" in response.content.decode()
    assert Contact.objects.get(pk=contact.pk).variables == {"phone": contact.phone, "name": "Ana"}
