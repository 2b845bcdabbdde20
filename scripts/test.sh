#!/usr/bin/env bash
# Sets up .venv (if needed) with the project and its dev tools, then runs lint, types and the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
"$VENV/bin/mypy" backtester
"$VENV/bin/python" -m pytest "$@"
