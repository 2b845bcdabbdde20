"""A run config that names a given higher-timeframe series (`series = "higher"`): the run equals the
notebook run given the same series, its manifest records the series and `verify` re-checks it,
`RunResult.save` writes it out, `lookahead` takes the config, and a bad series is one line of error
naming its file (exit 2)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from backtester import Backtest
from backtester.cli import main
from backtester.config_file import load_config
from backtester.engine import engine_for_config
from backtester.runs.inputs import load_data
from backtester.runs.runner import replay
from backtester.strategies import HourlyTrendCross
from tests.cli_support import REPO, run_cli, run_dir_of

MINUTES = REPO / "golden" / "data" / "binance_BTC-USDT_1m.parquet"
HOURS = REPO / "golden" / "data" / "binance_BTC-USDT_1h.csv"
PARAMS = {"fast": 5, "slow": 20, "trend_hours": 6}
# 2024-02-28 00:00 .. 2024-03-03 00:00 UTC: two days of hourly history before the first minute.
HOURS_FROM, HOURS_TO = 1_709_078_400_000, 1_709_424_000_000


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(1m bars, Binance's own 1h candles of them), small: a day and a half of minutes."""
    root = tmp_path_factory.mktemp("higher")
    bars = root / "bars.parquet"
    pl.read_parquet(MINUTES).head(2_000).write_parquet(bars)
    hours = root / "hours.csv"
    window = pl.col("timestamp_ms").is_between(HOURS_FROM, HOURS_TO, closed="left")
    pl.read_csv(HOURS).filter(window).write_csv(hours)
    return bars, hours


def config_text(bars: Path, hours: Path, *, timeframe: str = "1h") -> str:
    return f"""
cash = 10000.0

[[data]]
kind = "file"
path = {json.dumps(str(bars))}
symbol = "BTC/USDT"

[[data]]
kind = "file"
path = {json.dumps(str(hours))}
symbol = "BTC/USDT"
series = "higher"
timeframe = "{timeframe}"

[strategy]
name = "HourlyTrendCross"

[strategy.params]
fast = {PARAMS["fast"]}
slow = {PARAMS["slow"]}
trend_hours = {PARAMS["trend_hours"]}

[fees]
kind = "fixed"
rate = 0.001
"""


@pytest.fixture(scope="module")
def config(inputs: tuple[Path, Path]) -> Path:
    path = inputs[0].parent / "run.toml"
    path.write_text(config_text(*inputs))
    return path


@pytest.fixture(scope="module")
def recorded(config: Path) -> Path:
    done = run_cli("run", str(config), "--out", str(config.parent / "runs"))
    assert done.returncode == 0, done.stderr
    return run_dir_of(done.stdout)


def notebook(bars: Path, hours: Path | pl.DataFrame) -> Backtest:
    return Backtest(
        str(bars),
        HourlyTrendCross,
        cash=10_000.0,
        fee_rate=0.001,
        higher_timeframes={"1h": str(hours) if isinstance(hours, Path) else hours},
    )


def test_the_config_run_is_the_notebook_run_given_the_same_series(
    inputs: tuple[Path, Path], config: Path, recorded: Path
) -> None:
    bars, hours = inputs
    manifest = json.loads((recorded / "manifest.json").read_text())
    given = notebook(bars, hours).run(**PARAMS)
    assert given.digest == manifest["digest"]
    assert given.trades.height > 0
    as_frame = notebook(bars, pl.read_csv(hours)).run(**PARAMS)
    assert as_frame.digest == given.digest
    # The given hours reach back before the first minute, the resampled ones do not: the trend is
    # known from the first bar on, so the run is another one.
    resampled = Backtest(str(bars), HourlyTrendCross, cash=10_000.0, fee_rate=0.001).run(**PARAMS)
    assert resampled.digest != given.digest
    higher = [entry for entry in manifest["data"] if entry["series"] == "higher"]
    assert [(e["path"], e["timeframe"], e["rows"]) for e in higher] == [(str(hours), "1h", 96)]
    assert replay(load_config(config), str(config)).result.digest == given.digest


def test_verify_passes_and_names_a_tampered_series(
    inputs: tuple[Path, Path], recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", str(recorded)]) == 0
    assert "data BTC/USDT higher 1h" in capsys.readouterr().out
    _, hours = inputs
    original = hours.read_bytes()
    frame = pl.read_csv(hours)
    try:
        # A valid series still, with one hour's close moved to its low.
        frame.with_columns(
            pl.when(pl.int_range(pl.len()) == 60).then(pl.col("low")).otherwise(pl.col("close"))
        ).write_csv(hours)
        assert main(["verify", str(recorded)]) == 1
        out = capsys.readouterr().out
        assert f"data BTC/USDT higher 1h  CHANGED   {hours}: sha256 recorded" in out
        assert f"changed: data BTC/USDT higher 1h ({hours})" in out
    finally:
        hours.write_bytes(original)


def test_a_saved_notebook_run_writes_the_series_out_and_verifies(
    inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    bars, hours = inputs
    result = notebook(bars, pl.read_csv(hours)).run(**PARAMS)
    directory = result.save(tmp_path / "runs")
    (stored,) = (tmp_path / "runs" / "data").glob("*.parquet")
    saved = load_config(directory / "config.toml")
    assert saved.data[1].series == "higher" and saved.data[1].path == str(stored)  # type: ignore[union-attr]
    assert main(["verify", str(directory)]) == 0
    again = replay(saved, "saved")
    assert again.result.digest == result.digest


def test_lookahead_takes_the_config_and_finds_nothing(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lookahead", str(config), "--cuts", "8"]) == 0
    assert "none found" in capsys.readouterr().out


def test_the_notebook_look_ahead_check_cuts_the_given_series_too(inputs: tuple[Path, Path]) -> None:
    bars, hours = inputs
    assert notebook(bars, hours).check_lookahead(cuts=8, **PARAMS).ok


class HoursByOpenTime(HourlyTrendCross):
    """Wrong on purpose: each minute reads the close of the hour it is in (not yet closed)."""

    def signals(self) -> np.ndarray:
        hours = self.ctx.bars("1h")
        minutes = self.ctx.data[self.ctx.primary]["ts"].to_numpy()
        at = np.searchsorted(hours["ts"].to_numpy(), minutes, side="right") - 1
        rising = np.diff(hours["close"].to_numpy(), prepend=np.nan) > 0
        state = np.where(at >= 0, rising[np.maximum(at, 0)], False).astype(np.int8)
        return np.diff(state, prepend=np.int8(0))


def test_a_peek_into_a_given_series_is_flagged(inputs: tuple[Path, Path]) -> None:
    bars, hours = inputs
    peeking = Backtest(str(bars), HoursByOpenTime, higher_timeframes={"1h": str(hours)})
    report = peeking.check_lookahead(cuts=8)
    assert not report.ok
    assert {f.kind for f in report.findings} & {"signal", "order"}


def _shifted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col("timestamp_ms") + 30 * 60_000)


def _half_hours(frame: pl.DataFrame) -> pl.DataFrame:
    halves = frame.with_columns(pl.col("timestamp_ms") + 30 * 60_000)
    return pl.concat([frame, halves]).sort("timestamp_ms")


def _another_instrument(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col(c) * 0.055 for c in ("open", "high", "low", "close"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda f: f.head(20),
            "covers 2024-02-28T00:00:00Z .. 2024-02-28T19:00:00Z (bar opens); the run needs its 1h bars from 2024-03-01T00:00:00Z to 2024-03-02T08:00:00Z",
        ),
        (_shifted, "the bar at 2024-02-28T00:30:00Z does not open on the 1h grid"),
        (_half_hours, "holds 30m bars, not 1h"),
        (_another_instrument, "bars close outside the price range the bars of BTC/USDT traded in"),
    ],
)
def test_a_series_that_cannot_stand_for_the_hours_is_refused_naming_its_file(
    inputs: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: object,
    message: str,
) -> None:
    bars, hours = inputs
    bad = tmp_path / "bad_hours.csv"
    change(pl.read_csv(hours)).write_csv(bad)  # type: ignore[operator]
    config = tmp_path / "run.toml"
    config.write_text(config_text(bars, bad))
    assert main(["run", str(config), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bad} (data[1]): "), err
    assert message in err
    assert "\n" not in err
    # The notebook refuses the same series with the same words.
    with pytest.raises(ValueError, match=f"^{re.escape(str(bad))}: .*{re.escape(message)}"):
        notebook(bars, bad)


def test_an_undeclared_timeframe_and_bars_it_is_no_multiple_of_are_refused(
    inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    bars, hours = inputs
    config = tmp_path / "run.toml"
    config.write_text(config_text(bars, hours, timeframe="4h"))
    done = run_cli("run", str(config), "--out", str(tmp_path / "runs"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"error: {config}: data[1].timeframe: HourlyTrendCross declares no timeframe '4h' "
        "(its timeframes: 1h)"
    )
    # Bars of 40 minutes: an hour is no whole number of them.
    forty = tmp_path / "bars_40m.parquet"
    pl.read_parquet(bars).gather_every(40).write_parquet(forty)
    config.write_text(config_text(forty, hours))
    assert main(["run", str(config), "--out", str(tmp_path / "runs")]) == 2
    with pytest.raises(ValueError, match="timeframe '1h' is not a multiple of the 40m bars"):
        notebook(forty, hours)


def test_shipped_example_config_runs_on_shipped_data() -> None:
    config = REPO / "configs" / "hourly_trend_1m.toml"
    cfg = load_config(config)
    assert [s.series for s in cfg.data] == ["ohlcv", "higher"]
    run = replay(cfg, str(config))
    assert run.result.stats["trades"] > 0


def test_a_catalog_series_serves_as_the_given_hours(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "catalog"
    for path, timeframe in ((REPO / "tests/data/binance_BTC-USDT_1m.csv", "1m"), (HOURS, "1h")):
        imported = main(
            ["data", "import", str(path), "--exchange", "binance", "--symbol", "BTC/USDT",
             "--timeframe", timeframe, "--root", str(root)]
        )  # fmt: skip
        assert imported == 0
    catalog = f"""
[[data]]
kind = "catalog"
root = "{root.as_posix()}"
exchange = "binance"
symbol = "BTC/USDT"
timeframe = "1m"
start = "2024-03-02"
end = "2024-03-03"

[[data]]
kind = "catalog"
root = "{root.as_posix()}"
exchange = "binance"
symbol = "BTC/USDT"
series = "higher"
timeframe = "1h"
start = "2024-02-29"
end = "2024-03-04"

[strategy]
name = "HourlyTrendCross"

[strategy.params]
trend_hours = 6
"""
    config = tmp_path / "catalog.toml"
    config.write_text(catalog)
    capsys.readouterr()
    assert main(["run", str(config), "--out", str(tmp_path / "runs")]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    higher = manifest["data"][1]
    assert (higher["source"], higher["series"], higher["timeframe"]) == ("catalog", "higher", "1h")
    assert higher["partitions"] and higher["rows"] == 4 * 24
    assert main(["verify", str(run_dir)]) == 0


class HoursOfEach(HourlyTrendCross):
    def on_start(self) -> None:
        super().on_start()
        self.first_hours = {s: int(self.ctx.bars("1h", s)["ts"][0]) for s in self.ctx.data}


def test_a_series_for_the_second_instrument_goes_to_it(
    inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    bars, hours = inputs
    # The same minutes under a second symbol, and the given hours for that one only.
    second = f'[[data]]\nkind = "file"\npath = {json.dumps(str(bars))}\nsymbol = "ETH/USDT"\n\n'
    text = config_text(bars, hours).replace("[strategy]", second + "[strategy]", 1)
    text = text.replace('BTC/USDT"\nseries = "higher"', 'ETH/USDT"\nseries = "higher"')
    text = text.replace('"HourlyTrendCross"', f'"{__name__}:HoursOfEach"')
    config = tmp_path / "two.toml"
    config.write_text(text)
    cfg = load_config(config)
    data = load_data(cfg)
    assert set(data.higher) == {"ETH/USDT@1h"}
    engine = engine_for_config(cfg, data.frames, timeframes=data.higher)
    result = engine.run()
    # The given hours reach back to 2024-02-28; BTC/USDT's are resampled from its minutes.
    assert engine.strategy.first_hours == {  # type: ignore[attr-defined]
        "BTC/USDT": 1_709_251_200 * 10**9,
        "ETH/USDT": HOURS_FROM * 10**6,
    }
    bt = Backtest(
        {"BTC/USDT": str(bars), "ETH/USDT": str(bars)},
        HoursOfEach,
        cash=10_000.0,
        fee_rate=0.001,
        higher_timeframes={"ETH/USDT@1h": str(hours)},
    )
    assert bt.run(**PARAMS).digest == result.digest
