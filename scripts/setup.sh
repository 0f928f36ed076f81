#!/usr/bin/env bash
# Creates .venv and installs livetx-widgets (editable) with every extra: mic, offline engine,
# server, tests, browser tests, ruff. Safe to run again; it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install -q -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import livetx_widgets, faster_whisper, pyaudio, websockets" \
    || { echo "setup failed: see pip output above" >&2; exit 1; }
