#!/usr/bin/env bash
# Debian's Chromium and its ChromeDriver for the browser tests (tests/browser.py), installed
# when missing and running as root; prints the two paths. Never downloads a browser build.
set -euo pipefail
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    [ "$(id -u)" = 0 ] || { echo "chromium is not installed and this is not root" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -q >&2
    apt-get -o DPkg::Lock::Timeout=600 install -y -q chromium chromium-driver >&2
fi
echo "$(command -v chromium) $(command -v chromedriver)"
