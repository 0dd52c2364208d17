"""`create_user` and `set_role`: users are made in a role, with no default password, and audited."""

import io

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import BaseCommand, CommandError, call_command, load_command_class
from django.test import RequestFactory

from titanflow.access import role_of
from titanflow.models import AuditEntry

pytestmark = pytest.mark.django_db


def _run(*args, stdin: str | None = None, monkeypatch=None) -> str:
    out = io.StringIO()
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    call_command(*args, stdout=out)
    return out.getvalue()


def _fresh(username: str):
    return get_user_model().objects.get(username=username)  # role_of caches on the instance


def test_create_user_prints_a_generated_password_that_logs_in():
    output = _run("create_user", "--role", "viewer", "--username", "vic", "--email", "v@x.test")

    password = output.split("Password (shown once): ")[1].strip()
    user = authenticate(request=_login_request(), username="vic", password=password)
    assert user is not None and user.email == "v@x.test"
    assert role_of(user) == "viewer"
    entry = AuditEntry.objects.get(action="user.create")
    assert (entry.via, entry.object_repr, entry.changes) == ("command", "vic", {"role": "viewer"})


def test_create_user_reads_the_password_from_an_environment_variable(monkeypatch):
    monkeypatch.setenv("NEW_PW", "Correct-Horse-Battery-9")

    output = _run("create_user", "--role", "admin", "--username", "ana", "--password-env", "NEW_PW")

    assert "Correct-Horse" not in output and "shown once" not in output
    assert (
        role_of(
            authenticate(
                request=_login_request(), username="ana", password="Correct-Horse-Battery-9"
            )
        )
        == "admin"
    )


def test_create_user_reads_the_password_from_stdin(monkeypatch):
    _run(
        "create_user",
        "--role",
        "marketer",
        "--username",
        "max",
        "--password-stdin",
        stdin="Another-Long-Passw0rd\n",
        monkeypatch=monkeypatch,
    )

    assert (
        role_of(
            authenticate(request=_login_request(), username="max", password="Another-Long-Passw0rd")
        )
        == "marketer"
    )


def test_create_user_refuses_weak_passwords_and_taken_names(monkeypatch, marketer):
    monkeypatch.setenv("WEAK", "password")

    with pytest.raises(CommandError, match="Password refused"):
        _run("create_user", "--role", "viewer", "--username", "new", "--password-env", "WEAK")
    with pytest.raises(CommandError, match="already exists"):
        _run("create_user", "--role", "viewer", "--username", "mara")
    assert not get_user_model().objects.filter(username="new").exists()


def test_set_role_moves_a_user_to_exactly_one_role(marketer):
    _run("set_role", "--username", "mara", "--role", "admin")
    assert role_of(_fresh("mara")) == "admin"
    assert list(_fresh("mara").groups.values_list("name", flat=True)) == ["admins"]

    _run("set_role", "--username", "mara", "--role", "none")
    assert role_of(_fresh("mara")) is None

    changes = [e.changes for e in AuditEntry.objects.filter(action="user.role").order_by("id")]
    assert changes == [{"role": ["marketer", "admin"]}, {"role": ["admin", None]}]


def test_set_role_names_an_unknown_user():
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        _run("set_role", "--username", "ghost", "--role", "viewer")


@pytest.mark.parametrize("command", ["create_user", "set_role"])
def test_every_argument_has_help(command):
    common = {a.dest for a in BaseCommand().create_parser("manage.py", command)._actions}
    parser = load_command_class("titanflow", command).create_parser("manage.py", command)
    own = [action for action in parser._actions if action.dest not in common]

    assert len(own) >= 2
    assert all(action.help for action in own), [a.dest for a in own if not a.help]


def _login_request():
    # The login lockout (django-axes) judges every attempt by the request it came with.
    return RequestFactory().post("/accounts/login/")
