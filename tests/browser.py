"""A real browser for the tests: Debian's Chromium driven by Selenium through Debian's
chromedriver, installed by scripts/browser.sh when missing and running as root. Nothing is
downloaded: Selenium is handed both paths and told to stay offline. Screenshots go to
test-artifacts/ at the top of the checkout (git-ignored)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "browser.sh"
ARTIFACTS = ROOT / "test-artifacts"
WINDOW = (1400, 1000)


def browser_paths() -> tuple[str, str] | str:
    """(chromium, chromedriver), installing them when missing; or why they cannot be had."""
    found = shutil.which("chromium"), shutil.which("chromedriver")
    if all(found):
        return found[0], found[1]  # type: ignore[return-value]
    if os.geteuid() != 0:
        return "chromium and chromium-driver are not installed and installing them needs root"
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"scripts/browser.sh failed:\n{done.stdout}\n{done.stderr[-3000:]}")
    chromium, driver = done.stdout.split()[-2:]
    return chromium, driver


def start_browser():  # type: ignore[no-untyped-def]
    """A headless Chromium (selenium WebDriver), or a string saying why there is none."""
    paths = browser_paths()
    if isinstance(paths, str):
        return paths
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a browser or driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for flag in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--window-size={WINDOW[0]},{WINDOW[1]}", "--no-first-run"):
        options.add_argument(flag)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")
    return webdriver.Chrome(options=options, service=Service(executable_path=paths[1]))


def screenshot(driver, name: str) -> Path:  # type: ignore[no-untyped-def]
    """Save the page as test-artifacts/<name>.png; its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / (re.sub(r"[^A-Za-z0-9_.-]+", "-", name) + ".png")
    driver.save_screenshot(str(path))
    return path
