"""Errors a user will hit: one line on stderr, exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.cli_support import run_cli

GOOD = """\
cash = 10000.0

[[data]]
kind = "file"
path = "golden/data/binance_BTC-USDT_1m.parquet"
symbol = "BTC/USDT"

[strategy]
name = "SmaCross"
params = { fast = 10, slow = 30 }

[fees]
kind = "fixed"
rate = 0.001
"""


def run_config_text(tmp_path: Path, text: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    return run_cli("run", str(config), "--out", str(tmp_path / "runs")), config


def assert_user_error(done: subprocess.CompletedProcess[str], message: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == f"error: {message}"
    assert done.stdout == ""


def test_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    done = run_cli("run", str(missing))
    assert_user_error(done, f"config file not found: {missing}")


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    done, config = run_config_text(tmp_path, GOOD.replace("cash = 10000.0", "cash = = 10000.0"))
    assert_user_error(done, f"{config}: TOML syntax error: Invalid value (at line 1, column 8)")


def test_unknown_key_names_its_dotted_path(tmp_path: Path) -> None:
    done, config = run_config_text(tmp_path, GOOD.replace("rate = 0.001", "rat = 0.001"))
    assert_user_error(done, f"{config}: fees.rat: unknown key (did you mean 'rate'?)")


def test_wrong_type_names_path_and_expected_type(tmp_path: Path) -> None:
    done, config = run_config_text(tmp_path, GOOD.replace("rate = 0.001", 'rate = "low"'))
    assert_user_error(done, f"{config}: fees.rate: expected float, got str")


def test_unknown_strategy_lists_the_builtins(tmp_path: Path) -> None:
    done, config = run_config_text(tmp_path, GOOD.replace('"SmaCross"', '"SmaCros"'))
    assert_user_error(
        done,
        f"{config}: strategy.name: unknown strategy 'SmaCros' (built-in: HourlyTrendCross, SmaCross, SmaExtended, SmcOrderBlocks; "
        "or an import path package.module:Class)",
    )


def test_unimportable_strategy_path(tmp_path: Path) -> None:
    done, config = run_config_text(tmp_path, GOOD.replace('"SmaCross"', '"nowhere.module:Thing"'))
    assert_user_error(
        done, f"{config}: strategy.name: cannot import 'nowhere.module': No module named 'nowhere'"
    )


def test_unknown_fee_model_lists_the_valid_ones(tmp_path: Path) -> None:
    done, config = run_config_text(tmp_path, GOOD.replace('kind = "fixed"', 'kind = "flat"'))
    assert_user_error(
        done, f"{config}: fees.kind: unknown fee model 'flat' (valid: fixed, maker_taker)"
    )


def test_undeclared_strategy_parameter(tmp_path: Path) -> None:
    done, config = run_config_text(tmp_path, GOOD.replace("slow = 30", "slow = 30, fsat = 3"))
    assert_user_error(
        done,
        f"{config}: strategy.params.fsat: SmaCross does not declare this parameter "
        "(did you mean 'fast'? declared: fast, slow, short)",
    )


def test_missing_data_file(tmp_path: Path) -> None:
    done, _ = run_config_text(tmp_path, GOOD.replace("binance_BTC-USDT_1m.parquet", "gone.parquet"))
    assert_user_error(done, "golden/data/gone.parquet: data file not found")


def test_data_failing_validation_names_file_and_first_bad_row(tmp_path: Path) -> None:
    raw = "golden/data/binance_BTC-USDT_1m_raw.csv"
    text = GOOD.replace("golden/data/binance_BTC-USDT_1m.parquet", raw)
    done, _ = run_config_text(tmp_path, text)
    assert_user_error(
        done,
        f"{raw}: row 1000 (0-based data row as read): duplicate timestamp: "
        "time=2024-03-01T16:39:00Z, open=61443.65, high=61444.28, low=61390.0, close=61390.01, "
        "volume=23.95628 (pass repair=True to Backtest or load_bars, or set repair = true under "
        "[[data]] in a run config: identical duplicates are dropped, the last of conflicting ones "
        "kept, rows sorted)",
    )


def test_bad_override_is_reported_as_coming_from_set() -> None:
    done = run_cli("run", "configs/sma_cross.toml", "--set", "data[2].path=x.csv")
    assert_user_error(done, "--set: data[2].path: no such list element")


def test_parameter_value_the_strategy_rejects(tmp_path: Path) -> None:
    done, _ = run_config_text(tmp_path, GOOD.replace("fast = 10", "fast = 50"))
    assert_user_error(
        done,
        f"{tmp_path / 'bad.toml'}: strategy.params: need 1 <= fast < slow, got fast=50 slow=30",
    )
    assert not (tmp_path / "runs").exists()
