"""The HTML report in a real browser: headless Chromium (Debian's package) driven by Selenium opens
it from disk, every plot renders (SVG with drawn lines, laid out with a size) and the console stays
free of errors. Skips where Chromium, its driver or Selenium is not installed (.ci/run installs them)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from watch_helpers import WATCH_FIXTURES, watched

from nnlint.render.html import render_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="no chromium/chromedriver on this machine")


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.mark.slow
def test_the_report_opens_and_every_plot_renders_without_console_errors(browser, tmp_path):
    report = watched(WATCH_FIXTURES / "nn601_no_early_stopping.py")
    page = tmp_path / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    browser.get(Path(page).as_uri())
    assert browser.title == "nnlint watch report"
    charts = browser.execute_script(
        """return [...document.querySelectorAll('svg.chart')].map(svg => ({
            id: svg.id,
            width: svg.getBoundingClientRect().width,
            lines: [...svg.querySelectorAll('polyline')].map(line => line.points.numberOfItems),
            drawn: [...svg.querySelectorAll('polyline')].map(line => line.getBBox().width),
        }))"""
    )
    assert [chart["id"] for chart in charts] == ["loss", "learning-rate", "grad-norm"]
    for chart in charts:
        assert chart["width"] > 0 and chart["lines"] and all(n > 1 for n in chart["lines"]), chart
        assert all(width > 0 for width in chart["drawn"]), chart
    loss = next(chart for chart in charts if chart["id"] == "loss")
    assert loss["lines"] == [160, 40]  # every training step, every validation pass
    assert browser.execute_script("return document.querySelectorAll('#loss circle.best').length") == 1
    assert "NN601" in browser.find_element("css selector", ".finding .code").text
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
