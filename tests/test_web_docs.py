"""The OpenAPI docs pages work offline: their HTML names no other host, and every script, style
sheet and icon they load is served by the server itself."""

from __future__ import annotations

import re

import httpx
import pytest
from control_helpers import running_server

EXTERNAL = re.compile(r"(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
ASSET = re.compile(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""")


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("docs") / "home") as server:
        yield server


@pytest.mark.parametrize(("page", "expected"), [
    ("/docs", {"/static/docs/swagger-ui-bundle.js", "/static/docs/swagger-ui.css"}),
    ("/redoc", {"/static/docs/redoc.standalone.js"}),
])
def test_docs_page_loads_only_local_assets(running, page, expected):
    answer = httpx.get(running.url + page)
    assert answer.status_code == 200
    html = answer.text
    assert EXTERNAL.findall(html) == [], f"{page} names another host"
    loaded = {url for url in ASSET.findall(html) if url.startswith("/static/")}
    assert expected <= loaded
    for url in loaded:
        asset = httpx.get(running.url + url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url


def test_unknown_docs_asset_is_404(running):
    assert httpx.get(running.url + "/static/docs/..%2Fdocs.py").status_code == 404
    assert httpx.get(running.url + "/static/docs/nothing.js").status_code == 404


def test_docs_pages_stay_out_of_the_openapi_document(running):
    paths = httpx.get(running.url + "/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith(("/docs", "/redoc", "/static"))]


def test_swagger_ui_renders_in_a_browser_offline(running, browser):
    from browser import screenshot
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(running.url + "/docs")
    title = WebDriverWait(browser, 20).until(
        shown.visibility_of_element_located((By.CSS_SELECTOR, ".swagger-ui .info .title"))
    )
    assert "Suan control plane" in title.text
    operations = browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
    assert any(op.text.replace("\u200b", "") == "/v1/jobs" for op in operations)
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert loaded and all(url.startswith(running.url) for url in loaded), loaded
    screenshot(browser, "docs-swagger-ui")
