"""The report in a real browser: it loads offline with no console error, every chart renders, zooming
the shared time axis refits the price axis, and a one-year report opens quickly. A screenshot of each
page is saved under artifacts/ (set UPDATE_README_SCREENSHOT=1 to refresh docs/img/report.png)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backtester import load_bars
from backtester.cli import main
from backtester.report.html import write_html
from backtester.report.run_page import run_page
from tests.integration.report.cdp import Browser, find_chromium
from tests.report_support import (
    GOLDEN_BARS,
    REPO,
    golden_run,
    make_sweep_dir,
    synthetic_year,
    write_run_dir,
)

pytestmark = pytest.mark.browser

ARTIFACTS = REPO / "artifacts"
README_SCREENSHOT = REPO / "docs" / "img" / "report.png"

# Per chart container: the canvases Bokeh drew (inside shadow roots), their size, and how many sampled
# pixels carry colour (glyphs are coloured; background, grid, axes and text are grey).
CHART_STATE = r"""
(() => {
  function canvases(node, out) {
    if (node.shadowRoot) { canvases(node.shadowRoot, out); }
    for (const child of node.children || []) {
      if (child.tagName === 'CANVAS') { out.push(child); }
      canvases(child, out);
    }
    return out;
  }
  function coloured(canvas) {
    if (!canvas.width || !canvas.height) { return 0; }
    const px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 0; i < px.length; i += 4 * 5) {
      const hi = Math.max(px[i], px[i + 1], px[i + 2]), lo = Math.min(px[i], px[i + 1], px[i + 2]);
      if (px[i + 3] > 0 && hi - lo > 20) { n++; }
    }
    return n;
  }
  const views = window.Bokeh ? [...Bokeh.index] : [];
  return {
    finished: views.length > 0 && views.every(v => v.has_finished()),
    charts: Array.from(document.querySelectorAll('[data-chart]')).map(section => {
      const found = canvases(section, []);
      const biggest = found.reduce((a, c) => (c.width * c.height > a.width * a.height ? c : a),
                                   {width: 0, height: 0});
      return {key: section.dataset.chart, canvases: found.length,
              width: biggest.width, height: biggest.height,
              coloured: found.reduce((sum, c) => sum + coloured(c), 0)};
    }),
  };
})()
"""
ALL_RENDERED = f"(() => {{ const s = {CHART_STATE.strip()}; return s.finished && s.charts.length > 0 && s.charts.every(c => c.coloured > 0) ? s : null; }})()"


def _head_sha() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else "0" * 40


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = find_chromium()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but no Chromium is installed: run scripts/ensure_chromium.sh")
        pytest.skip("no Chromium found (install Debian's chromium: scripts/ensure_chromium.sh)")
    chromium = Browser(executable, width=1400, height=1000)
    yield chromium
    chromium.close()


def _load(browser: Browser, page: Path, timeout: float = 60.0) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    browser.open(page.resolve().as_uri())
    state = browser.wait_for(ALL_RENDERED, timeout)
    elapsed = time.monotonic() - started
    assert state, (
        f"charts did not all render within {timeout:.0f}s: {browser.evaluate(CHART_STATE)}"
    )
    return state, elapsed


def _assert_offline_and_clean(browser: Browser, page: Path) -> None:
    browser.evaluate("1")  # flush events that arrived after the last call
    assert browser.errors == []
    # data: URLs are the toolbar icons, inlined in the file; anything else would be a fetch.
    outside = [
        u for u in browser.requests if u != page.resolve().as_uri() and not u.startswith("data:")
    ]
    assert outside == []


def test_run_report_of_30k_real_bars_renders_every_chart_without_errors(
    tmp_path: Path, browser: Browser
) -> None:
    result = golden_run()
    assert result.stats["bars"] == 30_900
    # Laid out like a project: the manifest names the data relative to the root above runs/.
    relative = GOLDEN_BARS.relative_to(REPO)
    (tmp_path / relative).parent.mkdir(parents=True)
    shutil.copyfile(GOLDEN_BARS, tmp_path / relative)
    run_dir = write_run_dir(
        result,
        tmp_path / "runs",
        "3f9c2a7d51e04b68",
        tmp_path / relative,
        recorded_path=relative.as_posix(),
        git_sha=_head_sha(),
    )
    assert main(["report", str(run_dir)]) == 0
    page = run_dir / "report.html"

    state, elapsed = _load(browser, page)

    keys = [chart["key"] for chart in state["charts"]]
    assert keys == [
        "price-0",
        "equity",
        "drawdown",
        "exposure",
        "monthly-returns",
        "trade-returns",
        "trade-durations",
    ]
    for chart in state["charts"]:
        assert chart["width"] > 300 and chart["height"] > 100, chart
    _assert_offline_and_clean(browser, page)
    shot = browser.screenshot(ARTIFACTS / "report.png")
    if os.environ.get("UPDATE_README_SCREENSHOT"):
        README_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, README_SCREENSHOT)
    print(f"30k-bar report: {page.stat().st_size / 1e6:.1f} MB, rendered in {elapsed:.1f}s")


def test_zooming_the_time_axis_refits_the_price_axis_to_the_visible_bars(
    tmp_path: Path, browser: Browser
) -> None:
    data = synthetic_year(minutes=20_000)
    page = write_html(tmp_path / "report.html", run_page(data))
    _load(browser, page)
    bars = data.bars["BTC/USDT"]
    window = bars.slice(5_000, 1_000)
    start, end = int(window["ts"][0]) / 1e6, int(window["ts"][-1]) / 1e6
    price_y = "Bokeh.documents[0].get_model_by_name('price-y-BTC/USDT')"
    before = browser.evaluate(f"[{price_y}.start, {price_y}.end]")
    browser.evaluate(
        f"Bokeh.documents[0].get_model_by_name('time').setv({{start: {start}, end: {end}}})"
    )
    # CustomJS callbacks run asynchronously (compiled on first use): wait for the new y range.
    refit = browser.wait_for(
        f"(() => {{ const y = {price_y}; "
        f"return y.start !== {before[0]} || y.end !== {before[1]} ? [y.start, y.end] : null; }})()",
        10.0,
    )
    assert refit, "the price axis did not change after zooming"
    low, high = float(window["low"].min()), float(window["high"].max())
    assert refit[0] <= low and refit[1] >= high
    assert refit[1] - refit[0] < 1.5 * (high - low) + 1e-6
    # A thousand minutes fit the candle budget, so the bars themselves are shown, one candle each.
    shown = browser.evaluate(
        f"""(() => {{
          const doc = Bokeh.documents[0];
          const up = doc.get_model_by_name('candles-up').data_source.data;
          const down = doc.get_model_by_name('candles-down').data_source.data;
          const inside = d => d.open_time.filter(t => t >= {start} && t <= {end}).length;
          return [doc.get_model_by_name('price-BTC/USDT').title.text, inside(up) + inside(down)];
        }})()"""
    )
    assert shown == ["BTC/USDT: 1m candles", window.height]
    _assert_offline_and_clean(browser, page)


def test_one_year_1m_report_stays_small_and_opens_quickly(tmp_path: Path, browser: Browser) -> None:
    data = synthetic_year()
    assert data.stats["bars"] == 525_600
    page = write_html(tmp_path / "report.html", run_page(data))
    size_mb = page.stat().st_size / 1e6
    state, elapsed = _load(browser, page)
    assert len(state["charts"]) == 7
    _assert_offline_and_clean(browser, page)
    browser.screenshot(ARTIFACTS / "report-one-year.png")
    print(f"one-year report: {size_mb:.1f} MB, rendered in {elapsed:.1f}s")
    assert size_mb < 15
    assert elapsed < 20, f"took {elapsed:.1f}s to render"


def test_sweep_and_compare_pages_render_without_errors(tmp_path: Path, browser: Browser) -> None:
    first = golden_run(rows=2_000)
    second = golden_run(rows=2_000, seed=8, fast=12)
    run_a = write_run_dir(first, tmp_path / "runs", "run1", GOLDEN_BARS)
    run_b = write_run_dir(second, tmp_path / "runs", "run3", GOLDEN_BARS)
    sweep = make_sweep_dir(tmp_path)
    assert main(["report", str(sweep), "--top", "1"]) == 0
    assert main(["compare", str(run_a), str(run_b), "--out", str(tmp_path / "compare.html")]) == 0
    for page, charts, shot in (
        (sweep / "report.html", ["heatmap", "scatter-0", "scatter-1", "scatter-2"], "sweep.png"),
        (tmp_path / "compare.html", ["equity-overlay"], "compare.png"),
    ):
        state, _ = _load(browser, page)
        assert [chart["key"] for chart in state["charts"]] == charts
        _assert_offline_and_clean(browser, page)
        browser.screenshot(ARTIFACTS / shot)


def test_smc_run_report_shows_the_overlays(tmp_path: Path, browser: Browser) -> None:
    from backtester import Backtest
    from backtester.strategies import SmcOrderBlocks

    bars = load_bars(GOLDEN_BARS).frame.head(6_000)
    result = Backtest(bars, SmcOrderBlocks, cash=100_000, fee_rate=0.0004).run(swing_length=10)
    run_dir = write_run_dir(result, tmp_path / "runs", "5mc0a1b2c3d4e5f6", GOLDEN_BARS)
    assert main(["report", str(run_dir)]) == 0
    page = run_dir / "report.html"
    state, _ = _load(browser, page)
    assert state["charts"][0]["key"] == "price-0"
    drawn = browser.evaluate(
        """(() => {
          const doc = Bokeh.documents[0];
          const names = ['smc-fvg-bull', 'smc-fvg-bear', 'smc-order-blocks-bull',
                         'smc-order-blocks-bear', 'smc-swings', 'smc-bos', 'smc-choch'];
          return names.map(n => {
            const r = doc.get_model_by_name(n);
            if (!r) { return [n, -1, false]; }
            const data = r.data_source.data;
            return [n, data[Object.keys(data)[0]].length, r.visible];
          });
        })()"""
    )
    for name, count, visible in drawn:
        assert count > 0 and visible, (name, count)
    _assert_offline_and_clean(browser, page)
    browser.screenshot(ARTIFACTS / "report-smc.png")


def test_perpetual_report_shows_sides_funding_and_liquidations(
    tmp_path: Path, browser: Browser
) -> None:
    import polars as pl

    from backtester import Backtest, Instrument
    from tests.engine_support import scripted

    data = REPO / "golden" / "data"
    bars = pl.read_csv(data / "freqtrade_XRP-USDT-USDT_1h_futures.csv").filter(
        pl.col("timestamp_ms").is_between(1_637_164_800_000, 1_637_316_000_000, closed="left")
    )
    # At 60x both a short and the long after it are liquidated by the next move against them.
    script = {
        1: [lambda s: s.sell(fraction=0.3)],
        12: [lambda s: s.close()],
        14: [lambda s: s.buy(fraction=0.3)],
    }
    result = Backtest(
        bars,
        scripted(script),
        cash=10_000,
        fee_rate=0.0004,
        instrument=Instrument("XRP/USDT:USDT", leverage=60),
        funding=data / "freqtrade_XRP-USDT-USDT_8h_funding_rate.csv",
        mark=data / "freqtrade_XRP-USDT-USDT_1h_mark.csv",
    ).run()
    assert result.stats["short_trades"] == 1 and result.stats["liquidations"] == 2
    page = tmp_path / "perp.html"
    result.plot(filename=page, show=False)
    state, _ = _load(browser, page)
    assert "funding" in [chart["key"] for chart in state["charts"]]
    drawn = browser.evaluate(
        """(() => {
          const doc = Bokeh.documents[0];
          return ['liquidations', 'short-trade-lines', 'trade-lines', 'funding'].map(n => {
            const r = doc.get_model_by_name(n);
            if (!r) { return [n, -1]; }
            const data = r.data_source.data;
            return [n, data[Object.keys(data)[0]].length];
          });
        })()"""
    )
    assert dict(drawn) == {
        "liquidations": 2,
        "short-trade-lines": 1,
        "trade-lines": 1,
        "funding": dict(drawn)["funding"],
    }
    assert dict(drawn)["funding"] > 1
    _assert_offline_and_clean(browser, page)
    browser.screenshot(ARTIFACTS / "report-perpetual.png")
