"""Playwright driving Debian's Chromium against pytest-django's live server.

Screenshots go to test-artifacts/screenshots/ (kept out of git) so a person can look at each page.
"""

import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Slow enough that a person (and the test) can watch the progress move and pause it midway.
LIVE_NUMBERS, LIVE_MPS = 2, 3
# A pause reaches a sender at its next slice; short slices make that quick to see.
LIVE_SLICE_S = 2

# Playwright's sync API keeps an event loop in this thread; Django only sees ORM calls made from
# the test body, which are synchronous, so the async-safety guard does not apply here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is missing at {CHROMIUM}: `make test` installs it")
        pytest.skip(f"Chromium is missing at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def phone_page(browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screenshot():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def live_meta(live_server, settings):
    """The Meta simulator posting signed webhooks to the live server, used by its pages too."""
    from campaigns.engine import staging
    from titanflow.simulator.testing import start_simulator

    settings.META_APP_SECRET = settings.META_APP_SECRET or "browser-test-app-secret"
    world = staging.world_dict(numbers=LIVE_NUMBERS, mps=LIVE_MPS)
    with start_simulator(
        world=world,
        webhook_url=f"{live_server.url}/webhooks/whatsapp/",
        app_secret=settings.META_APP_SECRET,
        latency_ms=20,
    ) as simulator:
        settings.WHATSAPP_GRAPH_URL = simulator.url
        simulator.world_dict = world
        yield simulator


@pytest.fixture
def celery_worker(live_meta):
    """A real worker process on the live test database: it sends and processes webhooks."""
    from campaigns.engine import processes

    env = processes.child_env(
        WHATSAPP_GRAPH_URL=live_meta.url, LOG_LEVEL="WARNING", ENGINE_SLICE_SECONDS=LIVE_SLICE_S
    )
    # Every queue (worker_start's default): slices, webhook runs and beat's jobs all get taken.
    worker = processes.worker_start(concurrency=LIVE_NUMBERS + 1, env=env, name="browser-worker")
    yield worker
    worker.stop()


@pytest.fixture
def logged_in_page(page, live_server, marketer):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", marketer.username)
    page.fill("input[name=password]", "s3cret-Passw0rd!")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    return page
