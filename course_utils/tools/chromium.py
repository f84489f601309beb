"""Headless Chromium for the browser tests and screenshots: Debian's chromium and chromedriver, loopback only."""

from __future__ import annotations

from pathlib import Path

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# Headless as root (containers); no background traffic (this machine reaches nothing but 127.0.0.1, and a
# page must not either): no QUIC, no component updates or sync, every host name but 127.0.0.1 unresolvable.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--proxy-server=direct://",
         "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1")


def options(profile: str | Path, window: str = "1400,1000", *extra: str):
    """ChromeOptions for that Chromium, with a profile folder of its own and `extra` flags."""
    from selenium import webdriver

    chrome = webdriver.ChromeOptions()
    chrome.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--window-size={window}", f"--user-data-dir={profile}", *extra):
        chrome.add_argument(flag)
    return chrome


def service():
    """The chromedriver service, in a session of its own (so a test can find and stop what it started)."""
    from selenium.webdriver.chrome.service import Service

    return Service(CHROMEDRIVER, popen_kw={"start_new_session": True})
