"""Meta assets pages in a real browser: "Sync now" shows progress and the result without a reload.

Owned by the assets part (templates_app); kept here for the browser fixtures.
"""

import threading

import pytest
from django.db import connection

from templates_app import tasks
from templates_app.tests.conftest import TOKEN, WABA, build_world
from tests.factories import AccountFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def meta(settings):
    from titanflow.simulator.testing import start_simulator

    with start_simulator(world=build_world(templates=3)) as handle:
        settings.WHATSAPP_GRAPH_URL = handle.url
        yield handle


@pytest.fixture
def worker_thread(monkeypatch):
    """Runs queued syncs a moment later in a thread, as a worker would, so the page must poll."""
    timers = []

    def run(**kwargs):
        try:
            tasks.sync_account.run(**kwargs)
        finally:
            connection.close()  # the thread's own connection, or the test database stays busy

    def apply_async(*, kwargs, **options):
        timer = threading.Timer(0.5, run, kwargs=kwargs)
        timers.append(timer)
        timer.start()

    monkeypatch.setattr(tasks.sync_account, "apply_async", apply_async)
    yield
    for timer in timers:
        timer.join()


def test_sync_now_shows_progress_then_the_synced_templates_without_a_reload(
    meta, worker_thread, logged_in_page, live_server, screenshot
):
    AccountFactory(waba_id=WABA, name="Sync Shop", access_token=TOKEN)
    page = logged_in_page
    page.goto(f"{live_server.url}/assets/templates/")
    page.evaluate("window.notReloaded = true")

    page.click("text=Sync now")

    page.wait_for_selector("#sync-status [data-state=done]")
    page.wait_for_selector("#template-results >> text=promo_0002")
    assert "Synced 2 numbers, 3 templates" in page.inner_text("#sync-status")
    assert page.evaluate("window.notReloaded") is True
    screenshot(page, "assets-templates-synced")


def test_sync_now_on_the_accounts_page_keeps_its_progress_line(
    meta, worker_thread, logged_in_page, live_server, screenshot
):
    AccountFactory(waba_id=WABA, name="Sync Shop", access_token=TOKEN)
    page = logged_in_page
    page.goto(f"{live_server.url}/assets/accounts/")

    page.click("#account-table >> text=Sync now")

    page.wait_for_selector("#sync-status [data-state=done]")
    page.wait_for_selector("#account-table >> td.num >> text=3")  # the table reloaded itself
    screenshot(page, "assets-accounts-synced")
