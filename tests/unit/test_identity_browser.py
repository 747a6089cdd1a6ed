"""The invitation path in a real browser (headless Chromium from Debian, driven through
chromedriver by Selenium): the invitation link, the provider's own sign-in page, back to
the profile page with the invitation's role. Each step's screenshot is kept in
PORTICO_ARTIFACTS_DIR (default .artifacts/) under signin-browser/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.browser import artifacts, chromium
from tests.support.oidc import CAROL, oidc_portal


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    with chromium(tmp_path / "chromium") as chrome:
        yield chrome


def test_invitation_through_the_providers_sign_in_page_to_the_profile(
    tmp_path: Path, browser: webdriver.Chrome
) -> None:
    shots = artifacts("signin-browser")
    wait = WebDriverWait(browser, 30)
    with oidc_portal(tmp_path, "InvitationOnly") as (p, idp):
        p.invitations.codes["browser-code"] = ("Valid", ["Partner"])
        browser.get(f"{p.url}/register?invitation=browser-code")
        wait.until(expected_conditions.url_to_be(f"{p.url}/register"))  # code out of the URL
        assert "Your invitation is valid" in browser.page_source
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en-US"
        browser.save_screenshot(str(shots / "1-invitation.png"))

        browser.find_element(By.LINK_TEXT, "Sign up with zitadel").click()
        wait.until(expected_conditions.presence_of_element_located((By.ID, "username")))
        assert browser.current_url.startswith(idp.issuer)  # the provider's own page
        browser.save_screenshot(str(shots / "2-provider-sign-in.png"))

        browser.find_element(By.ID, "username").send_keys(CAROL.username)
        browser.find_element(By.ID, "password").send_keys(CAROL.password)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(expected_conditions.url_to_be(f"{p.url}/profile"))
        page = browser.page_source
        assert CAROL.email in page and "Partner" in page and "Authenticated" in page
        browser.save_screenshot(str(shots / "3-profile.png"))

        last = browser.find_element(By.ID, "lastName")
        last.clear()
        last.send_keys("Cooper")
        browser.find_element(By.XPATH, "//main//button[@type='submit']").click()
        wait.until(
            expected_conditions.text_to_be_present_in_element((By.TAG_NAME, "main"), "saved")
        )
        browser.save_screenshot(str(shots / "4-profile-saved.png"))
    assert sorted(f.name for f in shots.iterdir()) == [
        "1-invitation.png", "2-provider-sign-in.png", "3-profile.png", "4-profile-saved.png",
    ]  # fmt: skip
