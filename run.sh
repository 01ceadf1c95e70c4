#!/usr/bin/env bash
# Install PhotoMap's daemon into .venv and start it on 127.0.0.1 (port and API token are printed and written to the
# data dir). Extra arguments go to `photomapd serve`.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
.venv/bin/python -m pip install -q -e .
exec .venv/bin/photomapd serve "$@"
