"""Content in a real browser (headless Chromium from Debian, through chromedriver): a
contact signs in at the real OpenID provider's own page, opens an article from the
knowledge list and searches with the header's search form; the stand-in hub receives that
view and that search, signatures verified. Each step's screenshot is kept in
PORTICO_ARTIFACTS_DIR (default .artifacts/) under content-browser/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from portico_runtime import jobs
from portico_runtime.config import parse
from tests.support.browser import artifacts, chromium
from tests.support.hub import running_hub
from tests.support.oidc import ALICE, oidc_portal


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    with chromium(tmp_path / "chromium") as chrome:
        yield chrome


def test_an_article_and_a_search_in_a_browser_reach_the_hub(
    tmp_path: Path, browser: webdriver.Chrome
) -> None:
    shots = artifacts("content-browser")
    wait = WebDriverWait(browser, 30)
    with running_hub() as (hub, state):
        key = tmp_path / "sharedKey"
        key.write_text(state.key)
        analytics = {
            "customerInsights": {
                "hubUri": hub.url,
                "policyName": state.policy,
                "sharedKeyFile": str(key),
                "interactions": ["KnowledgeArticleViewed", "SearchPerformed"],
            }
        }
        with oidc_portal(tmp_path, "Open", analytics=analytics) as (p, idp):
            jobs.provision(parse(p.config))  # the template's sample content, as the Job does
            browser.get(f"{p.url}/knowledge")  # anonymous: readable, not tracked
            assert "How to reset your password" in browser.page_source
            browser.get(f"{p.url}/signin")
            browser.find_element(By.LINK_TEXT, "Sign in with zitadel").click()
            wait.until(expected_conditions.presence_of_element_located((By.ID, "username")))
            assert browser.current_url.startswith(idp.issuer)  # the provider's own page
            browser.find_element(By.ID, "username").send_keys(ALICE.username)
            browser.find_element(By.ID, "password").send_keys(ALICE.password)
            browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
            wait.until(expected_conditions.url_to_be(f"{p.url}/profile"))
            assert ALICE.email in browser.page_source

            browser.get(f"{p.url}/knowledge")
            browser.save_screenshot(str(shots / "1-knowledge.png"))
            browser.find_element(By.LINK_TEXT, "How to reset your password").click()
            wait.until(expected_conditions.url_to_be(f"{p.url}/knowledge/KA-01001"))
            heading = browser.find_element(By.TAG_NAME, "h1").text
            assert heading == "How to reset your password"
            browser.save_screenshot(str(shots / "2-article.png"))

            box = browser.find_element(By.ID, "site-q")
            box.send_keys("reset password", Keys.ENTER)
            wait.until(expected_conditions.url_contains("/search?q=reset+password"))
            results = browser.find_element(By.ID, "main")
            assert results.find_element(By.LINK_TEXT, "How to reset your password")
            browser.save_screenshot(str(shots / "3-search.png"))

            deadline = time.monotonic() + 15
            while len(state.accepted) < 2:
                assert time.monotonic() < deadline, state.accepted
                time.sleep(0.05)
            time.sleep(0.5)  # and nothing more
    assert state.refused == []
    view, search = state.accepted
    assert view["interactionType"] == "portal_viewknowledgearticle"
    assert view["properties"]["knowledgearticleid"] == "KA-01001"
    assert search["interactionType"] == "portal_search"
    assert search["properties"]["searchstring"] == "reset password"
    contact = view["properties"]["portal_contactid"]
    assert contact and search["properties"]["portal_contactid"] == contact
    assert sorted(f.name for f in shots.iterdir()) == [
        "1-knowledge.png", "2-article.png", "3-search.png",
    ]  # fmt: skip
