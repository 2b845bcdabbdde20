import ccxt
import pytest

from backtester.data.errors import FetchError
from backtester.data.fetch_exchange import ExchangeClient, redirect_urls


def test_every_api_url_moves_to_the_new_base_keeping_its_path() -> None:
    original = ccxt.binance().urls["api"]
    moved = redirect_urls(original, "http://127.0.0.1:8080/")
    assert moved.keys() == original.keys()
    assert moved["public"] == "http://127.0.0.1:8080/api/v3"
    assert moved["fapiPublic"] == "http://127.0.0.1:8080/fapi/v1"
    assert all(url.startswith("http://127.0.0.1:8080/") for url in moved.values())


def test_nested_url_tables_and_a_proxy_path_prefix() -> None:
    urls = {"public": {"spot": "https://api.example.com/v5/market"}, "rest": "https://x.io/api"}
    assert redirect_urls(urls, "https://proxy.local/example") == {
        "public": {"spot": "https://proxy.local/example/v5/market"},
        "rest": "https://proxy.local/example/api",
    }


def test_client_configuration_is_checked_before_any_request() -> None:
    with pytest.raises(FetchError, match="ccxt knows no exchange 'nosuchexchange'"):
        ExchangeClient("nosuchexchange", "spot")
    with pytest.raises(FetchError, match="must look like http"):
        ExchangeClient("binance", "spot", api_url="127.0.0.1:8080")
    client = ExchangeClient("binance", "swap", api_url="http://127.0.0.1:9", rate_limit_ms=7)
    assert client.exchange.rateLimit == 7
    assert client.exchange.options["fetchMarkets"]["types"] == ["linear", "inverse"]
    assert client.exchange.urls["api"]["dapiPublic"] == "http://127.0.0.1:9/dapi/v1"
