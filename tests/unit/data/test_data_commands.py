"""`python -m backtester data import | list | validate` through the real entry point."""

import json
from pathlib import Path

import pytest

from backtester.cli import main

DATA = Path(__file__).resolve().parents[2] / "data"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_import_list_and_validate_a_real_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(tmp_path / "catalog")
    code, out, _ = run(
        capsys, "data", "import", str(DATA / "freqtrade_UNITTEST-BTC_1m.csv"), "--root", root,
        "--exchange", "bittrex", "--symbol", "UNITTEST/BTC", "--timeframe", "1m",
    )  # fmt: skip
    assert code == 0
    assert "13681 rows, 538 gaps (717 missing bars)" in out
    code, out, _ = run(capsys, "data", "list", "--root", root)
    assert code == 0
    assert out.splitlines()[1].split() == [
        "bittrex", "spot", "UNITTEST/BTC", "1m", "13681", "2017-11-04", "23:02", "2017-11-14",
        "22:59", "538", "1",
    ]  # fmt: skip
    code, out, _ = run(capsys, "data", "list", "--root", root, "--json")
    assert json.loads(out)["rows"] == 13681
    code, out, _ = run(capsys, "data", "validate", "--root", root)
    assert code == 0
    assert "bittrex spot UNITTEST/BTC 1m: ok" in out
    assert "1 series checked, 0 failed" in out


def test_validate_fails_on_a_changed_partition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BACKTESTER_DATA_ROOT", str(tmp_path))
    code, _, _ = run(
        capsys, "data", "import", str(DATA / "binance_BTC-USDT_1m.csv"), "--exchange", "binance",
        "--symbol", "BTC/USDT", "--timeframe", "1m",
    )  # fmt: skip
    assert code == 0
    (part,) = tmp_path.glob("binance/spot/BTC-USDT/1m/year=2024/*.parquet")
    part.write_bytes(part.read_bytes().replace(b"PAR1", b"PAR2", 1))
    code, out, _ = run(capsys, "data", "validate")
    assert code == 1
    assert "content hash differs from the manifest" in out


def test_import_of_funding_rates_and_of_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, "data", "import", str(DATA / "freqtrade" / "XRP_USDT_USDT-8h-funding_rate.json"),
        "--root", str(tmp_path), "--exchange", "binance", "--market", "swap",
        "--symbol", "XRP/USDT:USDT", "--kind", "funding",
    )  # fmt: skip
    assert code == 0
    assert "binance swap XRP/USDT:USDT funding: 91 rows stored" in out
    code, _, err = run(
        capsys, "data", "import", str(DATA / "freqtrade" / "XRP_USDT_USDT-1h-mark.feather"),
        "--root", str(tmp_path), "--exchange", "binance", "--market", "swap",
        "--symbol", "XRP/USDT:USDT", "--timeframe", "1h",
    )  # fmt: skip
    assert code == 2
    assert "row 0: null or NaN value" in err
    assert "100 x null or NaN value" in err


def test_fetch_without_required_options_is_a_user_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "data", "fetch", "--symbol", "BTC/USDT", "--since", "2024-01-01")
    assert code == 2
    assert "missing --exchange" in err


def test_import_of_a_backtesting_py_csv_with_an_unnamed_date_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(tmp_path / "catalog")
    code, out, err = run(
        capsys, "data", "import", str(DATA / "backtesting_py_GOOG.csv"), "--root", root,
        "--exchange", "nasdaq", "--symbol", "GOOG/USD", "--timeframe", "1d",
    )  # fmt: skip
    assert code == 0, err
    assert "2148 rows" in out
    code, out, _ = run(capsys, "data", "list", "--root", root, "--json")
    listed = json.loads(out)
    assert listed["rows"] == 2148
    # 2004-08-19 and 2013-03-01, midnight UTC: the dates are read as UTC days.
    assert (listed["first_ms"], listed["last_ms"]) == (1_092_873_600_000, 1_362_096_000_000)
