#!/usr/bin/env bash
# Sets up .venv (if needed) and runs the demo backtest on the sample data shipped in the repo.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
"$VENV/bin/python" -m backtester run configs/sma_cross.toml "$@"
