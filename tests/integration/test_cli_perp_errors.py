"""Perpetual configs that cannot run: one line naming the file and key, exit 2, no traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli_support import run_cli

PERP = """\
cash = 10000.0

[[data]]
kind = "file"
path = "tests/data/freqtrade/freqtrade_XRP-USDT-USDT_1h_futures.csv"
symbol = "XRP/USDT:USDT"
start = "2021-11-17T16:00"
end = "2021-11-19T10:00"

[[data]]
kind = "file"
series = "funding"
path = "tests/data/freqtrade_XRP-USDT-USDT_8h_funding_rate.csv"
symbol = "{funding_symbol}"

[[instruments]]
symbol = "XRP/USDT:USDT"
leverage = {leverage}
margin_mode = "{mode}"
{tiers}

[strategy]
name = "SmaCross"
params = {{ fast = 3, slow = 6, short = true }}
"""

TIERS = "margin_tiers = [{ max_notional = 10000.0, maintenance_rate = 0.005, max_leverage = 20.0 }]"


def run_text(tmp_path: Path, text: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    config = tmp_path / "perp.toml"
    config.write_text(text)
    return run_cli("run", str(config), "--out", str(tmp_path / "runs")), config


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert done.stdout == ""
    return lines[0]


def perp(**overrides: str) -> str:
    values = {
        "funding_symbol": "XRP/USDT:USDT",
        "leverage": "2.0",
        "mode": "isolated",
        "tiers": "",
    }
    return PERP.format(**{**values, **overrides})


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"leverage": "0.0"}, ["instruments[0]", "leverage must be > 0, got 0.0"]),
        ({"leverage": "-3.0"}, ["instruments[0]", "leverage must be > 0"]),
        (
            {"leverage": "50.0", "tiers": TIERS},
            ["instruments[0]", "leverage 50 is above the maximum 20 of its first margin bracket"],
        ),
        ({"mode": "hedged"}, ["instruments[0].margin_mode", "isolated", "cross"]),
        (
            {"funding_symbol": "ETH/USDT:USDT"},
            ["data[1].symbol", "a funding series for 'ETH/USDT:USDT', which has no bars"],
        ),
    ],
    ids=["leverage-zero", "leverage-negative", "above-bracket", "margin-mode", "other-symbol"],
)
def test_bad_perpetual_configs_are_one_line_errors(
    tmp_path: Path, overrides: dict[str, str], expected: list[str]
) -> None:
    done, config = run_text(tmp_path, perp(**overrides))
    line = one_line_error(done)
    assert line.startswith(f"error: {config}"), line
    for part in expected:
        assert part in line, line


def test_a_funding_series_that_does_not_cover_the_run_is_an_error(tmp_path: Path) -> None:
    text = perp().replace('start = "2021-11-17T16:00"', 'start = "2021-11-17T01:00"')
    line = one_line_error(run_text(tmp_path, text)[0])
    assert "funding series for XRP/USDT:USDT does not cover the run" in line


def test_a_short_on_a_spot_cash_account_asked_for_in_config_is_an_error(tmp_path: Path) -> None:
    text = """\
[[data]]
kind = "file"
path = "golden/data/binance_BTC-USDT_1m.parquet"
symbol = "BTC/USDT"

[strategy]
name = "SmaCross"
params = { fast = 10, slow = 30, short = true }
"""
    done, config = run_text(tmp_path, text)
    line = one_line_error(done)
    assert line.startswith(f"error: {config}: strategy.params.short: SmaCross goes short"), line
    assert 'kind = "perpetual"' in line and '[account] kind = "margin"' in line
