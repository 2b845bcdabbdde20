"""`[[instruments]] from_catalog = "binance"`: the instrument comes from the markets snapshot that
`data markets` stored (through ccxt, from the loopback stub), the run's manifest says which, and a
config that cannot be built so stops in one line naming file and key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from binance_stub import API_KEY, API_SECRET, BinanceStub

from backtester.cli import main
from backtester.config import config_id, plain_config
from backtester.config_file import dump_config, load_config
from backtester.data.fetch_markets import ApiCredentials, MarketsOptions, fetch_markets
from backtester.data.markets import read_snapshot, write_snapshot
from backtester.domain.instrument import Instrument, MarginMode
from backtester.engine import run_config
from backtester.manifest import instrument_sha256, read_manifest
from backtester.runs.inputs import load_data
from backtester.runs.runner import replay
from backtester.sweep.config import load_sweep_config
from backtester.sweep.plan import build_plan

REPO = Path(__file__).resolve().parents[3]
PERPETUAL = (REPO / "configs" / "perp_short.toml").read_text()
SPELLED_OUT = """[[instruments]]
symbol = "XRP/USDT:USDT"
kind = "perpetual"
leverage = 2.0
margin_mode = "isolated"
tick_size = 0.0001
lot_size = 0.1
min_notional = 5.0
"""


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("catalog")
    with BinanceStub() as stub:
        options = MarketsOptions(exchange="binance", api_url=stub.url, root=str(root))
        fetch_markets(options, credentials=ApiCredentials(API_KEY, API_SECRET))
    yield root


def config(tmp_path: Path, instruments: str, name: str = "run.toml") -> Path:
    assert SPELLED_OUT in PERPETUAL  # the shipped config this one is made from
    text = PERPETUAL.replace(SPELLED_OUT, instruments)
    text = text.replace('path = "tests/', f'path = "{REPO}/tests/')
    path = tmp_path / name
    path.write_text(f'output_dir = "{tmp_path / "runs"}"\n' + text)
    return path


def from_catalog(root: Path, *extra: str) -> str:
    lines = ["[[instruments]]", 'symbol = "XRP/USDT:USDT"', 'from_catalog = "binance"']
    return "\n".join([*lines, f'root = "{root}"', *extra]) + "\n"


def test_a_catalog_instrument_is_the_listed_one_at_the_configured_leverage(
    catalog: Path, tmp_path: Path
) -> None:
    path = config(tmp_path, from_catalog(catalog, "leverage = 3", 'margin_mode = "cross"'))
    cfg = load_config(path)
    built = load_data(cfg).instruments["XRP/USDT:USDT"]
    listed = read_snapshot(catalog, "binance", "swap").instrument("XRP/USDT:USDT")
    assert built == msgspec.structs.replace(listed, leverage=3.0, margin_mode=MarginMode.CROSS)
    assert (built.tick_size, built.lot_size, built.min_notional) == (0.0001, 0.1, 5.0)
    assert (built.liquidation_fee, len(built.margin_tiers)) == (0.015, 10)
    assert built.margin_tiers[1].maintenance_amount == 15.0


def test_a_run_from_the_catalog_equals_the_run_with_the_same_instrument_written_out(
    catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(tmp_path, from_catalog(catalog, "leverage = 2"))
    assert main(["run", str(path)]) == 0
    capsys.readouterr()
    (run_dir,) = (tmp_path / "runs").iterdir()
    manifest = read_manifest(run_dir / "manifest.json")
    built = read_snapshot(catalog, "binance", "swap").instrument("XRP/USDT:USDT", leverage=2)
    (entry,) = manifest.instruments
    assert (entry.symbol, entry.sha256) == ("XRP/USDT:USDT", instrument_sha256(built))
    assert entry.snapshot == str(catalog / "binance" / "markets" / "swap")
    # The same instrument, spelled out: the same result.
    fields = msgspec.to_builtins(built)
    written = config(tmp_path, "", name="plain.toml")
    spelled = load_config(written)
    spelled = msgspec.structs.replace(
        spelled, instruments=[msgspec.convert(fields, type(load_config(path).instruments[0]))]
    )
    data = load_data(spelled)
    plain = run_config(spelled, data.frames, data.repairs, marks=data.marks, funding=data.funding)
    assert plain.digest == manifest.digest
    assert plain.stats["funding_paid"] != 0
    # Verify checks the instrument against the snapshot as it is now.
    assert main(["verify", str(run_dir)]) == 0
    assert "instrument XRP/USDT:USDT" in capsys.readouterr().out


def test_a_changed_snapshot_makes_another_run_and_verify_names_it(
    catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "catalog"
    (root / "binance").mkdir(parents=True)
    source = catalog / "binance" / "markets"
    for file in source.rglob("*.json"):
        target = root / "binance" / "markets" / file.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(file.read_bytes())
    path = config(tmp_path, from_catalog(root))
    before = replay(load_config(path), str(path))
    assert main(["run", str(path)]) == 0
    snapshot = read_snapshot(root, "binance", "swap")
    markets = dict(snapshot.markets)
    markets["XRP/USDT:USDT"] = {
        **markets["XRP/USDT:USDT"],
        "info": {**markets["XRP/USDT:USDT"]["info"], "liquidationFee": "0.020000"},
    }
    write_snapshot(
        root,
        "binance",
        "swap",
        markets,
        snapshot.tiers,
        fetched_at="2024-04-01T00:00:00.000Z",
        source=snapshot.manifest.source,
        ccxt_version=snapshot.manifest.ccxt_version,
        precision_mode=snapshot.manifest.precision_mode,
    )
    after = replay(load_config(path), str(path))
    assert after.config_id == before.config_id
    assert after.run_id != before.run_id
    capsys.readouterr()
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert main(["verify", str(run_dir)]) == 1
    out = capsys.readouterr().out
    assert "instrument XRP/USDT:USDT" in out and "fetched 2024-04-01" in out


@pytest.mark.parametrize(
    ("change", "key", "says"),
    [
        ({"symbol": '"DOGE/USDT:USDT"'}, "instruments[0].symbol", "not in the binance swap"),
        ({"tick_size": "0.001"}, "instruments[0].tick_size", "comes from the binance markets"),
        ({"leverage": "100"}, "instruments[0].leverage", "above the maximum 75"),
        ({"leverage": "0"}, "instruments[0].leverage", "must be > 0"),
        ({"from_catalog": '"kraken"'}, "instruments[0].from_catalog", "data markets --exchange"),
        ({"margin_mode": '"portfolio"'}, "instruments[0].margin_mode", "invalid value"),
    ],
)
def test_a_catalog_instrument_that_cannot_be_built_stops_in_one_line(
    catalog: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, str],
    key: str,
    says: str,
) -> None:
    entry = {"symbol": '"XRP/USDT:USDT"', "from_catalog": '"binance"', "root": f'"{catalog}"'}
    entry.update(change)
    path = config(tmp_path, "[[instruments]]\n" + "".join(f"{k} = {v}\n" for k, v in entry.items()))
    if "DOGE" in entry["symbol"]:  # its bars, mark and funding sources follow the symbol
        path.write_text(path.read_text().replace("XRP/USDT:USDT", "DOGE/USDT:USDT"))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith(f"error: {path}: {key}: "), err
    assert says in err


def test_root_alone_is_not_a_catalog_instrument(tmp_path: Path) -> None:
    path = config(tmp_path, SPELLED_OUT + 'root = "data"\n')
    with pytest.raises(ValueError, match=r"instruments\[0\]\.root: names the catalog"):
        load_config(path)


def test_config_ids_of_spelled_out_instruments_do_not_change() -> None:
    """A spelled-out entry is identified by the instrument it decodes to, as when the config
    held `Instrument`s directly: every shipped config keeps its config_id."""
    import tomllib

    for path in [*REPO.glob("golden/*/config.toml"), *REPO.glob("configs/*.toml")]:
        raw = tomllib.loads(path.read_text())
        if "instruments" not in raw:
            continue
        cfg = load_config(path)
        direct = [msgspec.to_builtins(msgspec.convert(i, Instrument)) for i in raw["instruments"]]
        assert plain_config(cfg)["instruments"] == direct, path


def test_a_catalog_config_written_back_out_decodes_to_the_same_config_id(
    catalog: Path, tmp_path: Path
) -> None:
    cfg = load_config(config(tmp_path, from_catalog(catalog)))
    again = tmp_path / "again.toml"
    again.write_text(dump_config(cfg))
    assert config_id(load_config(again)) == config_id(cfg)
    assert json.dumps(plain_config(cfg)["instruments"][0], sort_keys=True) == json.dumps(
        {
            "from_catalog": "binance",
            "leverage": 1.0,
            "margin_mode": "isolated",
            "root": str(catalog),
            "symbol": "XRP/USDT:USDT",
        },
        sort_keys=True,
    )


def test_a_sweep_refuses_a_catalog_instrument(catalog: Path, tmp_path: Path) -> None:
    base = config(tmp_path, from_catalog(catalog))
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(f'base = "{base}"\n[grid]\nfast = [2, 3]\n')
    with pytest.raises(ValueError, match=r"instruments\[0\]\.from_catalog: a sweep's workers"):
        build_plan(load_sweep_config(sweep))
