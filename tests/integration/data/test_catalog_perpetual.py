"""A perpetual run from the catalog alone: bars imported, mark-price candles and funding rates
fetched through ccxt from the loopback stub; the same result as the shipped file config, every
partition hashed in the manifest and checked by verify."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from binance_stub import BinanceStub

from backtester.cli import main
from backtester.config_file import load_config
from backtester.data.catalog import list_series, read_series
from backtester.manifest import read_manifest
from backtester.runs.runner import replay

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "tests" / "data"
XRP = "XRP/USDT:USDT"
SPAN = ("--since", "2021-11-15T06:00", "--until", "2021-11-19T10:00")
# The whole shipped funding series, as the file config reads it.
FUNDING_SPAN = ("--since", "2021-11-15T06:00", "--until", "2021-12-19")


@pytest.fixture(scope="module")
def stub() -> Iterator[BinanceStub]:
    with BinanceStub() as server:
        yield server


@pytest.fixture(scope="module")
def catalog(stub: BinanceStub, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("catalog")
    bars = DATA / "freqtrade" / "freqtrade_XRP-USDT-USDT_1h_futures.csv"
    common = ["--exchange", "binance", "--market", "swap", "--symbol", XRP, "--root", str(root)]
    assert main(["data", "import", str(bars), *common, "--timeframe", "1h"]) == 0
    fetch = ["data", "fetch", *common, "--api-url", stub.url, "--rate-limit-ms", "1"]
    assert main([*fetch, *SPAN, "--kind", "mark", "--timeframe", "1h"]) == 0
    assert main([*fetch, *FUNDING_SPAN, "--kind", "funding"]) == 0
    return root


def test_mark_candles_come_from_the_mark_price_endpoint_and_are_stored_as_served(
    stub: BinanceStub, catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert any(r.startswith("/fapi/v1/markPriceKlines?") for r in stub.requests)
    stored = read_series(catalog, "binance", XRP, "1h", market="swap", price="mark").frame
    served = pl.DataFrame(
        stub.marks, schema=["timestamp_ms", "open", "high", "low", "close", "volume"], orient="row"
    )
    assert stored.equals(served)
    kinds = sorted((m.timeframe, m.price) for m in list_series(catalog))
    assert kinds == [("1h", "mark"), ("1h", "trade"), ("funding", "trade")]
    assert (catalog / "binance" / "swap" / "XRP-USDT-USDT" / "mark-1h" / "manifest.json").is_file()
    spot = ["data", "fetch", "--exchange", "binance", "--symbol", "BTC/USDT", "--kind", "mark"]
    assert main([*spot, *SPAN, "--api-url", stub.url, "--root", str(catalog)]) == 2
    assert "mark-price candles exist for contracts only" in capsys.readouterr().err


def catalog_config(tmp_path: Path, root: Path) -> Path:
    text = (REPO / "configs" / "perp_short.toml").read_text()
    head, _, rest = text.partition("[[data]]")
    _, _, tail = rest.rpartition("[[instruments]]")
    sources = [
        ("", 'timeframe = "1h"\nstart = "2021-11-17T16:00"\nend = "2021-11-19T10:00"\n'),
        ('series = "mark"\n', 'timeframe = "1h"\n'),
        ('series = "funding"\n', ""),
    ]
    blocks = [
        f'[[data]]\nkind = "catalog"\n{series}exchange = "binance"\nmarket = "swap"\n'
        f'symbol = "{XRP}"\nroot = "{root}"\n{extra}\n'
        for series, extra in sources
    ]
    path = tmp_path / "catalog_perp.toml"
    path.write_text(
        f'output_dir = "{tmp_path / "runs"}"\n' + head + "".join(blocks) + "[[instruments]]" + tail
    )
    return path


def test_a_catalog_perpetual_run_is_the_file_run_and_hashes_every_partition(
    catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = catalog_config(tmp_path, catalog)
    from_files = replay(load_config(REPO / "configs" / "perp_short.toml"), "perp_short.toml")
    assert main(["run", str(path)]) == 0
    capsys.readouterr()
    (run_dir,) = (tmp_path / "runs").iterdir()
    manifest = read_manifest(run_dir / "manifest.json")
    assert manifest.digest == from_files.result.digest
    assert from_files.result.stats["funding_paid"] != 0
    assert manifest.marked_by == {XRP: "mark"}
    bars, marks, funding = manifest.data
    assert [entry.source for entry in manifest.data] == ["catalog"] * 3
    assert bars.path.endswith(f"{XRP}/1h") and marks.path.endswith(f"{XRP}/mark-1h")
    assert funding.path.endswith(f"{XRP}/funding")
    for entry, directory in ((bars, "1h"), (marks, "mark-1h"), (funding, "funding")):
        assert entry.partitions, entry
        for partition in entry.partitions:
            assert partition.path.startswith(f"binance/swap/XRP-USDT-USDT/{directory}/year=")
    assert main(["verify", str(run_dir)]) == 0
    assert "PASSED" in capsys.readouterr().out
    # A mark partition changed on disk: verify names that input.
    (partition,) = marks.partitions
    file = catalog / partition.path
    original = file.read_bytes()
    try:
        frame = pl.read_parquet(file).with_columns(pl.col("close") * 1.01)
        frame.write_parquet(file)
        assert main(["verify", str(run_dir)]) == 1
        out = capsys.readouterr().out
        assert "data XRP/USDT:USDT mark" in out and "CHANGED" in out
    finally:
        file.write_bytes(original)


def test_catalog_mark_and_funding_sources_are_refused_where_they_cannot_be(
    catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = catalog_config(tmp_path, catalog)
    text = path.read_text()
    cases = [
        (text.replace('series = "funding"\n', 'series = "funding"\ntimeframe = "8h"\n'),
         "data[2].timeframe: funding rates have no timeframe"),
        (text.replace('series = "mark"\nexchange = "binance"\nmarket = "swap"\n',
                      'series = "mark"\nexchange = "binance"\nmarket = "spot"\n'),
         'data[1].market: mark series are a contract\'s: market = "swap"'),
        (text.replace('series = "mark"\nexchange = "binance"\nmarket = "swap"\nsymbol = "XRP/USDT:USDT"\n'
                      f'root = "{catalog}"\ntimeframe = "1h"\n',
                      'series = "mark"\nexchange = "binance"\nmarket = "swap"\nsymbol = "XRP/USDT:USDT"\n'
                      f'root = "{catalog}"\ntimeframe = "1m"\n'),
         "binance swap XRP/USDT:USDT 1m mark: not in the catalog"),
    ]  # fmt: skip
    for changed, says in cases:
        assert changed != text
        path.write_text(changed)
        assert main(["run", str(path)]) == 2
        err = capsys.readouterr().err  # the run logs what it loaded first
        assert "Traceback" not in err
        last = err.strip().splitlines()[-1]
        assert last.startswith("error: ") and says in last, err
