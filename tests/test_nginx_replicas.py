"""Two app replicas behind deploy/nginx-replicas.conf on loopback: each browser stays on one replica (its
WebSocket, uploads and figure pictures live there), new browsers spread over both, and a student's Explain
works end to end through the proxy."""

from __future__ import annotations

import urllib.request
from collections import Counter

import pytest

from browser_steps import DEFAULT_IMAGE_FIGURES, new_user, open_page, press_explain, wait_for_figures
from conftest import screenshot
from harness.live import LiveServer
from harness.proxy import ReplicasProxy


@pytest.fixture(scope="module")
def proxied():
    replicas = [LiveServer(base_path="xai"), LiveServer(base_path="xai")]
    proxy = None
    try:
        proxy = ReplicasProxy([r.port for r in replicas], reveal=True)
        yield proxy, replicas
    finally:
        if proxy is not None:
            proxy.stop()
        for replica in replicas:
            replica.stop()


def visit(url: str, cookie: str | None = None) -> tuple[str, str]:
    """(the replica that answered, the replica cookie set) for one GET."""
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        cookies = [c.split(";")[0] for c in response.headers.get_all("Set-Cookie") if c.startswith("xai_replica=")]
        return response.headers["X-Replica"], cookies[0]


def test_each_browser_stays_on_one_replica_and_new_ones_spread(proxied):
    proxy, replicas = proxied
    first_answers = Counter()
    for _ in range(16):  # new browsers: no cookie yet
        replica, cookie = visit(f"{proxy.url}/")
        assert cookie.startswith("xai_replica=") and len(cookie) == len("xai_replica=") + 32
        first_answers[replica] += 1
        for path in ("/", "/_stcore/health", "/image", "/_stcore/host-config"):
            again, same_cookie = visit(f"{proxy.url}{path}", cookie)
            assert again == replica and same_cookie == cookie
    assert set(first_answers) == {f"127.0.0.1:{r.port}" for r in replicas}, first_answers


def test_a_student_explains_through_the_proxy(proxied, browser):
    proxy, _ = proxied
    with new_user(browser, f"{proxy.url}/") as page:
        open_page(page, "Images (ResNet)")
        press_explain(page)
        wait_for_figures(page, DEFAULT_IMAGE_FIGURES)
        pictures = page.locator(".js-plotly-plot image")  # the figures' photo and map: media of this session's replica
        assert pictures.count() >= 2
        assert all(page.evaluate("src => fetch(src).then(r => r.ok)", pictures.nth(i).get_attribute("href"))
                   for i in range(pictures.count()))
        screenshot(page, "nginx-replicas")
    assert "error" not in proxy.errors().lower()
