#!/usr/bin/env bash
# The main job: set up .venv (once) and open JupyterLab on notebooks/quickstart.ipynb, with the
# offline engine (no key, no network). The notebook's settings come from LIVETX_* variables
# (see its first cell); LIVETX_PROVIDER=deepgram (with DEEPGRAM_API_KEY) etc. overrides this.
#
#   bash scripts/lab.sh                      # JupyterLab (extra arguments go to jupyter lab)
#   bash scripts/lab.sh --headless [X.wav]   # no browser: run the quickstart on a WAV file
#                                            # (default: the shipped demo) and print the result
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c "import livetx_widgets, faster_whisper, jupyterlab, nbclient" 2>/dev/null
then
    bash scripts/setup.sh
fi
export LIVETX_PROVIDER="${LIVETX_PROVIDER:-local}"

if [ "${1:-}" = "--headless" ]; then
    exec .venv/bin/python scripts/headless.py notebooks/quickstart.ipynb "${2:-}"
fi

args=()
if [ "$(id -u)" = "0" ]; then
    args+=(--allow-root)  # containers and CI machines run as root
fi
exec .venv/bin/jupyter lab notebooks/quickstart.ipynb "${args[@]}" "$@"
