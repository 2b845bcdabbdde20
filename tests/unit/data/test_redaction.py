"""Credentials masked in anything shown or stored."""

from backtester.data.redaction import redact, without_userinfo


def test_passwords_tokens_and_secret_query_values_are_masked_and_the_rest_kept() -> None:
    text = "GET http://trader:hunter2@proxy:8080/api/v3/klines?symbol=BTCUSDT&apiKey=abc123&limit=5"
    assert redact(text) == (
        "GET http://trader:***@proxy:8080/api/v3/klines?symbol=BTCUSDT&apiKey=***&limit=5"
    )
    assert (
        redact("nats://s3cret@a:4222,nats://u:p@b:4222") == "nats://***@a:4222,nats://u:***@b:4222"
    )
    assert redact("tls://h:4222?token=t0k&x=1") == "tls://h:4222?token=***&x=1"
    assert redact("no url here; nats://host:4222") == "no url here; nats://host:4222"


def test_without_userinfo_drops_the_credential_part_of_every_url() -> None:
    assert without_userinfo("nats://u:p@a:1,nats://tok@b:2") == "nats://a:1,nats://b:2"
