"""Input that used to be accepted with a wrong result (exit 0): non-finite values, limits that deny
every order, timestamps in the wrong unit or off the bar grid, a timeframe that is not the file's.
Each is one line naming the file, key or row, and exit code 2; nothing is stored or run."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest

from backtester import Backtest
from backtester.cli import main
from backtester.data.catalog import list_series
from backtester.data.errors import DataError
from backtester.execution.fees import FixedRateFee, MakerTakerFee
from backtester.execution.slippage import FixedBpsSlippage, VolumeShareSlippage
from backtester.strategies import SmaCross

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "golden" / "data" / "binance_BTC-USDT_1m.parquet"
MINUTE = 60_000


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return pl.read_parquet(GOLDEN).head(300)


def config_text(data: Path, extra: str = "", cash: str = "10000.0") -> str:
    return (
        f"cash = {cash}\n"
        f'[[data]]\nkind = "file"\npath = "{data}"\nsymbol = "BTC/USDT"\n'
        '[strategy]\nname = "SmaCross"\nparams = { fast = 5, slow = 20 }\n'
        f"{extra}"
    )


def run_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> str:
    config = tmp_path / "bad.toml"
    config.write_text(text, encoding="utf-8")
    code = main(["run", str(config), "--out", str(tmp_path / "runs")])
    captured = capsys.readouterr()
    assert code == 2, captured.out + captured.err
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("error: ")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    return line


@pytest.mark.parametrize(
    ("extra", "cash", "expected"),
    [
        ("", "inf", "cash: must be a finite amount, got inf"),
        ('[fees]\nkind = "fixed"\nrate = inf\n', "10000.0", "fees.rate: expected float < 1"),
        ('[fees]\nkind = "maker_taker"\ntaker = 1.5\n', "1e4", "fees.taker: expected float < 1"),
        (
            '[slippage]\nkind = "fixed_bps"\nbps = 1e308\n',
            "10000.0",
            "slippage.bps: expected float < 10000",
        ),
        (
            '[slippage]\nkind = "volume_share"\nprice_impact = inf\n',
            "10000.0",
            "slippage: price_impact inf x volume_limit 0.025^2 must be below 1",
        ),
        (
            "[risk]\nmax_position_notional = -5\n",
            "10000.0",
            "risk: max_position_notional must be > 0 (leave it out for no limit), got -5.0",
        ),
    ],
)
def test_settings_that_cannot_trade_are_refused_naming_the_key(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    bars: pl.DataFrame,
    extra: str,
    cash: str,
    expected: str,
) -> None:
    data = tmp_path / "bars.parquet"
    bars.write_parquet(data)
    line = run_error(tmp_path, capsys, config_text(data, extra, cash))
    assert "bad.toml" in line
    assert expected in line


def test_the_notebook_refuses_the_same_settings(bars: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="cash must be a finite amount"):
        Backtest(bars, SmaCross, cash=math.inf)
    with pytest.raises(ValueError, match="max_position_notional must be > 0"):
        Backtest(bars, SmaCross, max_position_notional=-5)
    for make in (
        lambda: FixedRateFee(rate=math.inf),
        lambda: MakerTakerFee(maker=0.0, taker=math.nan),
        lambda: FixedBpsSlippage(bps=1e308),
        lambda: VolumeShareSlippage(price_impact=math.inf),
    ):
        with pytest.raises(ValueError, match="below"):
            make()


def _csv(tmp_path: Path, frame: pl.DataFrame, name: str = "bars.csv") -> Path:
    path = tmp_path / name
    frame.write_csv(path)
    return path


def test_an_infinite_price_is_refused_by_run_and_by_import_naming_the_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bars: pl.DataFrame
) -> None:
    broken = bars.with_columns(
        high=pl.when(pl.int_range(pl.len()) == 7).then(math.inf).otherwise(pl.col("high"))
    )
    data = _csv(tmp_path, broken)
    line = run_error(tmp_path, capsys, config_text(data))
    assert f"{data}: row 7 (0-based data row as read): infinite value" in line
    with pytest.raises(DataError, match=r"row 7 .*infinite value"):
        Backtest(broken, SmaCross)
    code = main(["data", "import", str(data), "--exchange", "x", "--symbol", "BTC/USDT",
                 "--timeframe", "1m", "--root", str(tmp_path / "catalog")])  # fmt: skip
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert "row 7" in line and "infinite value" in line
    assert list_series(tmp_path / "catalog") == []


@pytest.mark.parametrize(
    ("scale", "unit"), [(1 / 1000, "seconds"), (1_000_000, "nanoseconds")], ids=["s", "ns"]
)
def test_a_timestamp_ms_column_in_another_unit_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bars: pl.DataFrame, scale: float, unit: str
) -> None:
    other = bars.with_columns((pl.col("timestamp_ms") * scale).cast(pl.Int64).alias("timestamp_ms"))
    data = _csv(tmp_path, other)
    line = run_error(tmp_path, capsys, config_text(data))
    assert f"row 0 (0-based data row as read): timestamp_ms={other['timestamp_ms'][0]}" in line
    assert f"is in epoch {unit}, not milliseconds" in line
    # Named `timestamp`, the unit is detected and the same bars run.
    renamed = _csv(tmp_path, other.rename({"timestamp_ms": "timestamp"}), "detected.csv")
    assert Backtest(str(renamed), SmaCross).run(fast=5, slow=20).digest == (
        Backtest(bars, SmaCross).run(fast=5, slow=20).digest
    )


def test_a_column_mixing_epoch_units_is_refused_at_the_first_odd_row(bars: pl.DataFrame) -> None:
    mixed = bars.rename({"timestamp_ms": "timestamp"}).with_columns(
        timestamp=pl.when(pl.int_range(pl.len()) == 40)
        .then(pl.col("timestamp") // 1000)
        .otherwise(pl.col("timestamp"))
    )
    with pytest.raises(DataError, match=r"row 40 .* is in epoch seconds, unlike the epoch milli"):
        Backtest(mixed, SmaCross)


def test_an_off_grid_timestamp_is_refused_by_run_as_by_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bars: pl.DataFrame
) -> None:
    shifted = bars.with_columns(
        timestamp_ms=pl.when(pl.int_range(pl.len()) == 12)
        .then(pl.col("timestamp_ms") + 30_000)
        .otherwise(pl.col("timestamp_ms"))
    )
    data = _csv(tmp_path, shifted)
    line = run_error(tmp_path, capsys, config_text(data))
    assert (
        "row 12 (0-based data row as read): timestamp off the bar grid (bars are 1m apart" in line
    )
    code = main(["data", "import", str(data), "--exchange", "x", "--symbol", "BTC/USDT",
                 "--timeframe", "1m", "--root", str(tmp_path / "catalog")])  # fmt: skip
    assert code == 2
    assert "timestamp off the timeframe grid" in capsys.readouterr().err


def test_daily_bars_off_the_hour_are_refused_and_a_daylight_saving_shift_is_not() -> None:
    day, hour = 86_400_000, 3_600_000
    stamps = [1_704_067_200_000 + i * day + (hour if i >= 20 else 0) for i in range(40)]
    frame = pl.DataFrame(
        {"timestamp_ms": stamps, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0}
    )
    assert Backtest(frame, SmaCross).run(fast=2, slow=5).stats["trades"] == 0
    glitch = frame.with_columns(
        timestamp_ms=pl.when(pl.int_range(pl.len()) == 30)
        .then(pl.col("timestamp_ms") + 90_000)
        .otherwise(pl.col("timestamp_ms"))
    )
    with pytest.raises(
        DataError, match=r"row 30 .*bars are 1d apart, on whole hours from the first"
    ):
        Backtest(glitch, SmaCross)


def test_importing_daily_bars_as_1m_is_refused_with_the_files_own_timeframe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    day = 86_400_000
    daily = pl.DataFrame(
        {
            "timestamp_ms": [1_704_067_200_000 + i * day for i in range(30)],
            "open": [100.0] * 30,
            "high": [101.0] * 30,
            "low": [99.0] * 30,
            "close": [100.5] * 30,
            "volume": [5.0] * 30,
        }
    )
    data = _csv(tmp_path, daily)
    args = ["data", "import", str(data), "--exchange", "x", "--symbol", "BTC/USDT"]
    args += ["--root", str(tmp_path / "catalog")]
    assert main([*args, "--timeframe", "1m"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        f"error: {data}: most bars are 1d apart, not 1m: is the timeframe 1d? "
        "(give the file's own timeframe; resample after import)"
    )
    assert list_series(tmp_path / "catalog") == []
    assert main([*args, "--timeframe", "1d"]) == 0
    assert [m.rows for m in list_series(tmp_path / "catalog")] == [30]
