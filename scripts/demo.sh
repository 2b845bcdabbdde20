#!/usr/bin/env bash
# Sets up .venv (if needed) and runs the demo backtest on the sample data shipped in the repo: the stats
# table, then the run directory and its HTML report.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
"$VENV/bin/python" -m backtester run configs/btc_trend_1h.toml --report "$@"
