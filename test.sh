#!/usr/bin/env bash
# Install everything the test suite needs (Python packages with the Ray group, Debian's Chromium and Firefox ESR, the
# extension's npm packages), then run the whole suite. Extra arguments go to pytest (e.g. ./test.sh -k search).
set -euo pipefail
cd "$(dirname "$0")"

python3 -m venv .venv
.venv/bin/python -m pip install -q -e '.[test,scale]'

# Browser tests drive Debian's chromium through playwright-core and Debian's firefox-esr through puppeteer-core
# (WebDriver BiDi); no browser is ever downloaded by a test tool.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v firefox-esr >/dev/null 2>&1 || missing+=(firefox-esr)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi
if [ -f extension/package.json ]; then
    # PUPPETEER_SKIP_DOWNLOAD: belt and braces, puppeteer-core downloads nothing by itself
    (cd extension && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    # dist/ is git-ignored: build the loadable extensions (the browser tests load dist/chrome), then the panel's
    # unit tests on node's own runner.
    (cd extension && node build.mjs && node --test --test-reporter=dot test/)
fi

status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then status=0; fi  # 5 = no tests collected, which is not a failure
exit "$status"
