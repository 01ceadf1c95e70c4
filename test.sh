#!/usr/bin/env bash
# Install everything the test suite needs (Python packages, Debian's Chromium, the extension's npm packages), then
# run the whole suite. Extra arguments go to pytest (e.g. ./test.sh -k search).
set -euo pipefail
cd "$(dirname "$0")"

python3 -m venv .venv
.venv/bin/python -m pip install -q -e '.[test]'

# Browser tests drive Debian's chromium through playwright-core; no browser is ever downloaded by a test tool.
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium
fi
if [ -f extension/package.json ]; then
    (cd extension && npm ci --no-audit --no-fund --loglevel=error)
    # dist/ is git-ignored: build the loadable extensions (the browser tests load dist/chrome), then the panel's
    # unit tests on node's own runner.
    (cd extension && node build.mjs && node --test --test-reporter=dot test/)
fi

status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then status=0; fi  # 5 = no tests collected, which is not a failure
exit "$status"
