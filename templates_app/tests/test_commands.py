"""`sync_templates` and `sync_phone_numbers`, against the simulator."""

import pytest
from django.core.management import CommandError, call_command

from templates_app.models import MessageTemplate, PhoneNumber
from templates_app.tests.conftest import TOKEN, WABA
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db(transaction=True)  # accounts sync in worker threads


def test_sync_templates_fetches_templates_only_and_prints_progress(meta, capsys):
    AccountFactory(waba_id=WABA, access_token=TOKEN)

    call_command("sync_templates", "--account", WABA)

    out = capsys.readouterr().out
    assert MessageTemplate.objects.count() == 3
    assert not PhoneNumber.objects.exists()
    assert f"{WABA}: Fetching templates…" in out
    assert f"{WABA}: 3 templates" in out


def test_sync_phone_numbers_syncs_every_account_by_default(meta, capsys):
    AccountFactory(waba_id=WABA, access_token=TOKEN)

    call_command("sync_phone_numbers")

    assert PhoneNumber.objects.count() == 2
    assert not MessageTemplate.objects.exists()
    assert f"{WABA}: 2 numbers" in capsys.readouterr().out


def test_a_refused_account_fails_the_command(meta):
    AccountFactory(waba_id=WABA, access_token="revoked")

    with pytest.raises(CommandError, match="1 of 1 account"):
        call_command("sync_templates")


def test_an_unknown_account_is_named(db):
    with pytest.raises(CommandError, match="No account with WABA id 42"):
        call_command("sync_templates", "--account", "42")
