"""A run config's given higher-timeframe series (`series = "higher"`, `timeframe = "1h"`): decoded,
written back and decoded to the same config, and every mistake named by file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from backtester.config import ConfigError, FileSource, config_id, plain_config
from backtester.config_file import decode_config, dump_config, load_config

BASE = """
[[data]]
kind = "file"
path = "bars.parquet"
symbol = "BTC/USDT"

[strategy]
name = "HourlyTrendCross"
"""

HIGHER = """
[[data]]
kind = "file"
path = "hours.parquet"
symbol = "BTC/USDT"
series = "higher"
timeframe = "1h"
"""


def written(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_a_higher_series_decodes_and_round_trips_to_the_same_config(tmp_path: Path) -> None:
    cfg = load_config(written(tmp_path, BASE + HIGHER))
    source = cfg.data[1]
    assert isinstance(source, FileSource)
    assert (source.series, source.timeframe, source.symbol) == ("higher", "1h", "BTC/USDT")
    again = load_config(written(tmp_path, dump_config(cfg)))
    assert again == cfg
    assert config_id(again) == config_id(cfg)


def test_catalog_higher_series_round_trips(tmp_path: Path) -> None:
    text = BASE + (
        '\n[[data]]\nkind = "catalog"\nexchange = "binance"\nsymbol = "BTC/USDT"\n'
        'series = "higher"\ntimeframe = "4h"\n'
    )
    cfg = load_config(written(tmp_path, text))
    assert cfg.data[1].timeframe == "4h"
    assert config_id(load_config(written(tmp_path, dump_config(cfg)))) == config_id(cfg)


def test_file_sources_without_a_timeframe_keep_their_identity() -> None:
    # The key is left out of the identity when unset, so configs written before it keep their ids.
    plain = plain_config(
        decode_config(
            {
                "data": [{"kind": "file", "path": "b", "symbol": "X"}],
                "strategy": {"name": "SmaCross"},
            },
            "t",
        )
    )
    assert "timeframe" not in plain["data"][0]


@pytest.mark.parametrize(
    ("edit", "key", "message"),
    [
        ('timeframe = "1h"\n', "data[1].timeframe", "missing required key"),
        ('symbol = "BTC/USDT"\nseries', "data[1].symbol", "a higher series for 'ETH/USDT'"),
        ('series = "higher"', "data[1].series", "invalid value"),
    ],
)
def test_mistakes_name_the_file_and_key(tmp_path: Path, edit: str, key: str, message: str) -> None:
    replacement = {
        'timeframe = "1h"\n': "",
        'symbol = "BTC/USDT"\nseries': 'symbol = "ETH/USDT"\nseries',
        'series = "higher"': 'series = "hours"',
    }[edit]
    path = written(tmp_path, BASE + HIGHER.replace(edit, replacement))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    # One line: the file, the key, what is wrong with it.
    assert str(caught.value).startswith(f"{path}: {key}: ")
    assert message in str(caught.value)


def test_a_timeframe_on_bars_and_a_repeated_higher_series_are_refused(tmp_path: Path) -> None:
    on_bars = BASE.replace('symbol = "BTC/USDT"\n', 'symbol = "BTC/USDT"\ntimeframe = "1m"\n', 1)
    with pytest.raises(ConfigError, match=r"data\[0\]\.timeframe: only a higher series"):
        load_config(written(tmp_path, on_bars))
    with pytest.raises(ConfigError, match="'BTC/USDT' has more than one higher 1h source"):
        load_config(written(tmp_path, BASE + HIGHER + HIGHER))
    # Two timeframes of one symbol are two series.
    four = HIGHER.replace('"1h"', '"4h"').replace("hours", "four_hours")
    assert len(load_config(written(tmp_path, BASE + HIGHER + four)).data) == 3
