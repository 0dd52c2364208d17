"""The campaign admin: staff see status and counters but cannot change them by hand."""

import pytest

from campaigns.models import Campaign
from tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db


def test_staff_cannot_edit_a_campaigns_status_or_counters(client, staff_user):
    campaign = CampaignFactory(status=Campaign.Status.RUNNING, total_count=10, failed_count=3)
    client.force_login(staff_user)
    url = f"/admin/campaigns/campaign/{campaign.pk}/change/"

    page = client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert "status" not in form.fields
    assert not {"failed_count", "sent_count", "total_count"} & set(form.fields)
    data = {
        name: form.initial.get(name, "") or "" for name in form.fields if name != "variable_mapping"
    }
    data.update(
        name=campaign.name,
        owner=campaign.owner_id,
        variable_mapping="{}",
        columns="[]",
        import_report="{}",
        dedup_days="0",
        status="completed",
        failed_count="0",
        **{"senders-TOTAL_FORMS": "0", "senders-INITIAL_FORMS": "0"},
    )
    saved = client.post(url, data)
    assert saved.status_code == 302, saved.context["adminform"].form.errors

    campaign.refresh_from_db()
    assert (campaign.status, campaign.failed_count, campaign.total_count) == ("running", 3, 10)
    assert "3" in page.content.decode()


def test_staff_see_an_ab_test_with_its_arms_but_cannot_set_its_winner(client, staff_user):
    from campaigns.ab.models import AbArm, AbTest
    from tests.factories import TemplateFactory

    test = AbTest.objects.create(campaign=CampaignFactory(), test_share=30)
    template = TemplateFactory(name="spring")
    AbArm.objects.create(test=test, position=0, template=template)
    client.force_login(staff_user)
    page = client.get(f"/admin/campaigns/abtest/{test.pk}/change/")
    assert page.status_code == 200
    assert "winner" not in page.context["adminform"].form.fields
    assert f'name="arms-0-template" value="{template.pk}"' in page.content.decode()
