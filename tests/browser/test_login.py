import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_marketer_logs_in_and_lands_on_the_dashboard(logged_in_page, screenshot):
    assert logged_in_page.locator("h1").first.inner_text() == "Dashboard"
    screenshot(logged_in_page, "dashboard-after-login")


def test_wrong_password_is_explained(page, live_server, marketer):
    page.goto(f"{live_server.url}/campaigns/")
    assert "/accounts/login/" in page.url
    page.fill("input[name=username]", marketer.username)
    page.fill("input[name=password]", "not-the-password")
    page.click("button[type=submit]")
    assert "didn't match" in page.locator(".error").inner_text()
