"""Fixtures every test module may use: users of each kind and a running Meta simulator."""

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group

SHARED = Path(__file__).resolve().parent.parent / "shared"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Real hashers take ~0.3 s a user by design; tests create many users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def shared_dir():
    """The engineers' shared folder with Meta's real payloads; absent on a user's machine."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present on this machine")
    return SHARED


@pytest.fixture
def marketer(db):
    from tests.factories import the_marketer

    return the_marketer()


@pytest.fixture
def marketer_client(client, marketer):
    client.force_login(marketer)
    return client


@pytest.fixture
def other_marketer(db, django_user_model):
    user = django_user_model.objects.create_user(username="omar", password="s3cret-Passw0rd!")
    user.groups.add(Group.objects.get_or_create(name=settings.MARKETER_GROUP)[0])
    return user


@pytest.fixture
def site_admin(db, django_user_model):
    """In the admins group, not a superuser nor staff: the app's role, not the Django admin."""
    user = django_user_model.objects.create_user(username="ada", password="s3cret-Passw0rd!")
    user.groups.add(Group.objects.get_or_create(name=settings.ADMIN_GROUP)[0])
    return user


@pytest.fixture
def site_admin_client(client, site_admin):
    client.force_login(site_admin)
    return client


@pytest.fixture
def viewer(db, django_user_model):
    user = django_user_model.objects.create_user(username="vera", password="s3cret-Passw0rd!")
    user.groups.add(Group.objects.get_or_create(name=settings.VIEWER_GROUP)[0])
    return user


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def staff_user(db, django_user_model):
    return django_user_model.objects.create_user(
        username="stefan", password="s3cret-Passw0rd!", is_staff=True, is_superuser=True
    )


@pytest.fixture
def simulator():
    from titanflow.simulator.testing import start_simulator

    with start_simulator() as handle:
        yield handle


@pytest.fixture(scope="session", autouse=True)
def _webhook_store_threads_end(django_db_setup, django_db_blocker):
    """The door's group-commit thread holds a connection to the test database: close it before
    the database is dropped."""
    yield
    from webhooks.committer import committers_stop

    committers_stop()
