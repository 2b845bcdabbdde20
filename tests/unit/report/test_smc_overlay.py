"""The SMC overlay draws the zones, swings and breaks of `indicators.smc_zones`, and a run of a
strategy that declares it gets it without being asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from backtester import Backtest
from backtester.indicators import smc_zones
from backtester.report.data import epoch_ms
from backtester.report.notebook import result_data
from backtester.report.overlays import overlays_for
from backtester.report.run_page import run_charts
from backtester.strategies import SmcOrderBlocks
from tests.report_support import GOLDEN_BARS

NAMES = [
    "smc-fvg-bull",
    "smc-fvg-bear",
    "smc-order-blocks-bull",
    "smc-order-blocks-bear",
    "smc-swings",
    "smc-bos",
    "smc-choch",
]


@pytest.fixture(scope="module")
def price() -> tuple[Any, pl.DataFrame]:
    bars = pl.read_parquet(GOLDEN_BARS).head(3_000)
    result = Backtest(bars, SmcOrderBlocks, cash=100_000, fee_rate=0.0004).run(swing_length=10)
    data = result_data(result, result.bars)
    assert data.overlays == {"smc": {"swing_length": 10}}
    return run_charts(data)[0].model, result.bars["BTC/USDT"] if result.bars else bars


def _source(figure: Any, name: str) -> dict[str, Any]:
    found = [r for r in figure.renderers if r.name == name]
    assert len(found) == 1, name
    return dict(found[0].data_source.data)


def test_every_overlay_layer_is_drawn_and_not_empty(price: tuple[Any, pl.DataFrame]) -> None:
    figure, _ = price
    for name in NAMES:
        assert len(next(iter(_source(figure, name).values()))) > 0, name


def test_gap_boxes_span_from_the_gaps_first_bar_to_its_mitigation(
    price: tuple[Any, pl.DataFrame],
) -> None:
    figure, bars = price
    times = epoch_ms(bars["ts"])
    o, h, low, c = (bars[k].to_numpy() for k in ("open", "high", "low", "close"))
    zones = smc_zones.fvg_zones(o, h, low, c).filter(pl.col("direction") > 0)
    drawn = _source(figure, "smc-fvg-bull")
    np.testing.assert_array_equal(drawn["left"], times[zones["start"].to_numpy()])
    mitigated = zones["mitigated"].fill_null(-1).to_numpy()
    known = mitigated >= 0
    np.testing.assert_array_equal(np.asarray(drawn["right"])[known], times[mitigated[known]])
    np.testing.assert_array_equal(drawn["top"], zones["top"].to_numpy())


def test_break_lines_run_from_the_swing_to_the_breaking_bar_at_its_level(
    price: tuple[Any, pl.DataFrame],
) -> None:
    figure, bars = price
    times = epoch_ms(bars["ts"])
    breaks = smc_zones.structure_breaks(bars["high"], bars["low"], bars["close"], 10)
    drawn = _source(figure, "smc-bos")
    bos = breaks.filter(kind="bos")
    np.testing.assert_array_equal(drawn["x0"], times[bos["swing"].to_numpy()])
    np.testing.assert_array_equal(drawn["x1"], times[bos["row"].to_numpy()])
    np.testing.assert_array_equal(drawn["level"], bos["level"].to_numpy())


def test_overlays_come_from_the_strategy_or_are_asked_for() -> None:
    assert overlays_for("SmaCross", {"fast": 3}) == {}
    assert overlays_for("SmaCross", {}, ["smc"]) == {"smc": {}}
    assert overlays_for("SmcOrderBlocks", {"swing_length": 7, "stop_buffer_pct": 1.0}) == {
        "smc": {"swing_length": 7}
    }
    with pytest.raises(ValueError, match="unknown overlay 'ichimoku'"):
        overlays_for("SmaCross", {}, ["ichimoku"])


def test_report_command_draws_an_overlay_on_request(tmp_path: Path) -> None:
    from backtester.cli import main
    from backtester.report.run_report import load_run
    from tests.report_support import golden_run, write_run_dir

    run_dir = write_run_dir(golden_run(rows=1_500), tmp_path, "r1", GOLDEN_BARS)
    assert load_run(run_dir).overlays == {}
    assert load_run(run_dir, overlays=["smc"]).overlays == {"smc": {}}
    assert main(["report", str(run_dir), "--overlay", "smc"]) == 0
    assert "smc-order-blocks-bull" in (run_dir / "report.html").read_text()
