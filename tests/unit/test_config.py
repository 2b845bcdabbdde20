from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import msgspec
import pytest

from backtester.config import (
    ConfigError,
    FileSource,
    FixedBpsSlippageSpec,
    MakerTakerFeeSpec,
    RunConfig,
    canonical_json,
    config_id,
)
from backtester.config_file import apply_override, decode_config, dump_config, load_config

REPO = Path(__file__).resolve().parents[2]
# Run configs only: sweep configs (configs/sweep_*.toml) have their own schema and tests.
SHIPPED = sorted(
    [
        *(p for p in REPO.glob("configs/*.toml") if not p.name.startswith("sweep_")),
        *REPO.glob("golden/*/config.toml"),
    ]
)

MINIMAL = """
[[data]]
kind = "file"
path = "bars.parquet"
symbol = "BTC/USDT"

[strategy]
name = "SmaCross"
"""


def write(tmp_path: Path, text: str, name: str = "run.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_minimal_config_fills_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg.data == [FileSource(path="bars.parquet", symbol="BTC/USDT", repair=False)]
    assert cfg.cash == 10_000.0
    assert cfg.seed == 0
    assert cfg.output_dir == "runs"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_shipped_configs_decode_and_round_trip_through_toml(path: Path) -> None:
    cfg = load_config(path)
    again = decode_config(tomllib.loads(dump_config(cfg)), "dumped")
    assert again == cfg
    assert config_id(again) == config_id(cfg)


def test_model_specs_decode_as_tagged_unions(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + """
[fees]
kind = "maker_taker"
maker = 0.0002
taker = 0.0005

[slippage]
kind = "fixed_bps"
bps = 1.5
"""
    )
    cfg = load_config(write(tmp_path, text))
    assert cfg.fees == MakerTakerFeeSpec(maker=0.0002, taker=0.0005)
    assert cfg.slippage == FixedBpsSlippageSpec(bps=1.5)


def test_config_id_ignores_formatting_and_output_dir(tmp_path: Path) -> None:
    plain = load_config(write(tmp_path, MINIMAL, "a.toml"))
    reformatted = load_config(
        write(
            tmp_path,
            '# same run\noutput_dir = "elsewhere"\nstrategy = { name = "SmaCross" }\n'
            'data = [{ symbol = "BTC/USDT", path = "bars.parquet", kind = "file" }]\n',
            "b.toml",
        )
    )
    assert config_id(reformatted) == config_id(plain)


def test_config_id_changes_with_any_setting_that_decides_the_result(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    base = config_id(load_config(path))
    assert config_id(load_config(path, seed=1)) != base
    assert config_id(load_config(path, overrides=["strategy.params.fast=5"])) != base
    assert config_id(load_config(path, overrides=["cash=20000"])) != base


def test_config_id_is_sha256_of_sorted_json_without_output_dir(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    canonical = canonical_json(cfg)
    decoded = msgspec.json.decode(canonical)
    assert "output_dir" not in decoded
    assert list(decoded) == sorted(decoded)
    assert decoded["strategy"] == {"name": "SmaCross", "params": {}}
    assert config_id(cfg) == hashlib.sha256(canonical).hexdigest()


def test_overrides_reach_nested_tables_list_elements_and_new_tables(tmp_path: Path) -> None:
    cfg = load_config(
        write(tmp_path, MINIMAL),
        overrides=[
            "strategy.params.fast=5",
            "data[0].repair=true",
            "fees.kind=fixed",
            "fees.rate=0.002",
            "strategy.name=SmaExtended",
        ],
        seed=9,
        output_dir="out",
    )
    assert cfg.strategy.params == {"fast": 5}
    assert cfg.strategy.name == "SmaExtended"
    assert cfg.data[0].repair is True
    assert cfg.fees.rate == 0.002  # type: ignore[union-attr]
    assert (cfg.seed, cfg.output_dir) == (9, "out")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("no_equals_sign", "--set expects key.path=value, got 'no_equals_sign'"),
        ("data[4].path=x", "--set: data[4].path: no such list element"),
        ("cash.value=1", "--set: cash.value: not inside a table"),
        ("a..b=1", "--set: a..b: malformed key path"),
    ],
)
def test_bad_overrides_are_config_errors(override: str, message: str) -> None:
    raw = tomllib.loads(MINIMAL) | {"cash": 5.0}
    with pytest.raises(ConfigError) as caught:
        apply_override(raw, override)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("top", "tables", "message"),
    [
        ("seed = -1", "", "seed: expected int >= 0"),
        ("cash = 0", "", "cash: expected float > 0.0"),
        ("", '[slippage]\nkind = "volume_share"\nvolume_limit = 2.0', "slippage.volume_limit"),
        ("", "[fees]\nrate = 0.1", "fees.kind: missing required key (valid: fixed, maker_taker)"),
        (
            "",
            '[slippage]\nkind = "random"',
            "slippage.kind: unknown slippage model 'random' (valid: none, fixed_bps, volume_share)",
        ),
        (
            "",
            '[fill]\nintrabar = "sideways"',
            "fill.intrabar: invalid value 'sideways' (valid: ohlc, pessimistic, optimistic)",
        ),
        ("", '[[instruments]]\nsymbol = "ETH/USDT"', "instruments[0].symbol: 'ETH/USDT' has no"),
        (
            "",
            '[[instruments]]\nsymbol = "BTC/USDT"\nlot_size = 0.0',
            "instruments[0].lot_size: must be > 0",
        ),
    ],
)
def test_invalid_values_name_their_key(tmp_path: Path, top: str, tables: str, message: str) -> None:
    path = write(tmp_path, f"{top}\n{MINIMAL}\n{tables}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_data_symbols_must_be_unique(tmp_path: Path) -> None:
    text = MINIMAL + '\n[[data]]\nkind = "file"\npath = "other.csv"\nsymbol = "BTC/USDT"\n'
    with pytest.raises(ConfigError, match="data: symbol 'BTC/USDT' has more than one source"):
        load_config(write(tmp_path, text))


def test_catalog_source_decodes_with_window(tmp_path: Path) -> None:
    text = """
[[data]]
kind = "catalog"
exchange = "binance"
symbol = "BTC/USDT"
timeframe = "1h"
start = "2024-01-01"
end = 1709251200000

[strategy]
name = "SmaCross"
"""
    source = load_config(write(tmp_path, text)).data[0]
    assert msgspec.to_builtins(source) == {
        "kind": "catalog",
        "exchange": "binance",
        "symbol": "BTC/USDT",
        "timeframe": "1h",
        "market": "spot",
        "series": "ohlcv",
        "start": "2024-01-01",
        "end": 1709251200000,
        "root": "data",
        "repair": False,
    }


def test_dumped_config_escapes_strings_and_keeps_floats_exact() -> None:
    cfg = msgspec.convert(
        {
            "data": [{"kind": "file", "path": 'odd "name"\\\t.csv', "symbol": "BTC/USDT"}],
            "strategy": {"name": "SmaExtended", "params": {"stop_loss_pct": 0.1 + 0.2}},
        },
        RunConfig,
    )
    again = decode_config(tomllib.loads(dump_config(cfg)), "dumped")
    assert again == cfg
    assert again.strategy.params["stop_loss_pct"] == 0.30000000000000004


def test_unknown_top_level_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "capital = 5.0\n" + MINIMAL)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}: capital: unknown key (valid keys here: data, strategy, instruments, cash, "
        "account, seed, fees, slippage, fill, risk, stats, output_dir)"
    )


def test_wrong_type_inside_a_list_of_tables_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace('symbol = "BTC/USDT"', "symbol = 1"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: data[0].symbol: expected str, got int"


def test_unterminated_string_reports_the_last_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'seed = 0\nname = "open\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "TOML syntax error" in str(caught.value)
    assert "line 2" in str(caught.value)


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ("[fill]\nintrabr = 'ohlc'", "fill.intrabr: unknown key (did you mean 'intrabar'?)"),
        ("seeed = 3", "seeed: unknown key (did you mean 'seed'?)"),
        (
            "[fees]\nkind = 'fixed'\nrat = 0.1",
            "fees.rat: unknown key (did you mean 'rate'?)",
        ),
        (
            "[fill]\nzzz = 1",
            "fill.zzz: unknown key (valid keys here: trade_on_close, intrabar)",
        ),
    ],
)
def test_unknown_keys_get_the_nearest_valid_key(tmp_path: Path, tables: str, message: str) -> None:
    # Top-level keys go before the first table; tables after the minimal config.
    text = f"{tables}\n{MINIMAL}" if "[" not in tables else f"{MINIMAL}\n{tables}\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: {message}"


def test_an_unknown_key_in_a_data_source_is_matched_against_every_kind(tmp_path: Path) -> None:
    path = write(
        tmp_path, MINIMAL.replace('symbol = "BTC/USDT"', 'symbol = "BTC/USDT"\nrepiar = true')
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: data[0].repiar: unknown key (did you mean 'repair'?)"


def test_a_misspelt_strategy_parameter_gets_the_nearest_declared_one(tmp_path: Path) -> None:
    from backtester.engine.assembly import strategy_class, strategy_params

    cfg = load_config(write(tmp_path, MINIMAL + "params = { fats = 5 }\n"))
    with pytest.raises(ConfigError) as caught:
        strategy_params(strategy_class("SmaCross"), cfg.strategy)
    assert str(caught.value) == (
        "strategy.params.fats: SmaCross does not declare this parameter "
        "(did you mean 'fast'? declared: fast, slow, short)"
    )


CATALOG = """
[[data]]
kind = "catalog"
exchange = "binance"
symbol = "BTC/USDT"
timeframe = "1m"

[strategy]
name = "SmaCross"
"""


def test_a_toml_date_needs_no_quotes_in_set_or_in_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, CATALOG)
    unquoted = load_config(path, overrides=["data[0].start=2024-03-10"])
    quoted = load_config(path, overrides=['data[0].start="2024-03-10"'])
    assert unquoted.data[0].start == "2024-03-10"  # type: ignore[union-attr]
    assert config_id(unquoted) == config_id(quoted)
    in_file = load_config(
        write(
            tmp_path,
            CATALOG.replace('timeframe = "1m"', 'timeframe = "1m"\nend = 2024-03-12T06:00:00Z'),
        )
    )
    assert in_file.data[0].end == "2024-03-12T06:00:00+00:00"  # type: ignore[union-attr]
