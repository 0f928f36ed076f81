#!/usr/bin/env bash
# Creates .venv and installs livetx-widgets (editable) with every extra: kernel microphone,
# offline engine, server, tests, browser tests, ruff. Safe to run again.
#
# pyaudio (the kernel microphone) has no Linux wheel: it compiles against PortAudio's headers.
# As root on Debian/Ubuntu this script installs them (portaudio19-dev); otherwise, if they are
# missing, it installs everything else and says how to add the microphone later. The browser
# microphone and file sources work without it.
set -euo pipefail
cd "$(dirname "$0")/.."

have_portaudio() { [ -f /usr/include/portaudio.h ]; }

if ! have_portaudio && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "setup: installing PortAudio headers for pyaudio (apt-get install portaudio19-dev)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        portaudio19-dev >/dev/null
fi

extras="dev"
if ! have_portaudio; then
    extras="offline,server,test,browser-test"
    echo "setup: PortAudio headers not found; installing without the kernel microphone." >&2
    echo "       To add it: sudo apt-get install portaudio19-dev && bash scripts/setup.sh" >&2
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
pip_quiet() { .venv/bin/python -m pip install -q "$@" 2>&1 | grep -v "^WARNING: Location" || true; }
pip_quiet --upgrade pip
pip_quiet -e ".[$extras]"
if [ "$extras" != "dev" ]; then
    pip_quiet ruff
fi
# The notebook tests also run in an ipykernel 6 kernel (the venv has 7): its own directory,
# put first on that kernel's PYTHONPATH by the test's kernel spec (tests/notebooks/conftest.py).
pip_quiet --no-deps --upgrade --target .venv/ipykernel6 "ipykernel>=6.29,<7" "nest-asyncio>=1.4"
.venv/bin/python -c "import livetx_widgets, faster_whisper, websockets, jupyterlab, marimo" \
    || { echo "setup failed: see the pip output above" >&2; exit 1; }
[ -f .venv/ipykernel6/ipykernel/__init__.py ] \
    || { echo "setup failed: ipykernel 6 not installed in .venv/ipykernel6" >&2; exit 1; }
echo "setup: ready (.venv)"
