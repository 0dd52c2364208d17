import re
from io import StringIO

from django.contrib.auth import authenticate
from django.core.management import call_command
from django.test import RequestFactory

from templates_app.models import WhatsAppAccount


def _load() -> str:
    out = StringIO()
    call_command("load_demo", contacts=20, stdout=out)
    return out.getvalue()


def test_demo_loads_twice_and_the_printed_logins_work(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    _load()
    output = _load()

    account = WhatsAppAccount.objects.get()
    assert account.phones.count() == 3
    assert account.templates.filter(status="APPROVED").count() >= 6
    marketer_password = re.search(r"marketer / (\S+)", output).group(1)
    admin_password = re.search(r"admin / (\S+)", output).group(1)
    marketer = authenticate(
        request=_login_request(), username="marketer", password=marketer_password
    )
    admin = authenticate(request=_login_request(), username="admin", password=admin_password)
    assert marketer is not None and not marketer.is_staff
    assert marketer.groups.filter(name="marketers").exists()
    assert admin is not None and admin.is_staff
    lines = (tmp_path / "demo" / "contacts.csv").read_text().splitlines()
    assert len(lines) == 21


def _login_request():
    # The login lockout (django-axes) judges every attempt by the request it came with.
    return RequestFactory().post("/accounts/login/")
