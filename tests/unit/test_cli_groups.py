from __future__ import annotations

import sys
from pathlib import Path

import pytest

from backtester import cli


def test_a_group_not_in_this_installation_is_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        cli, "COMMAND_GROUPS", ("backtester.runs.commands", "backtester.not_installed")
    )
    args = cli.build_parser().parse_args(["run", "configs/sma_cross.toml", "--seed", "4"])
    assert (args.command, args.config, args.seed) == ("run", "configs/sma_cross.toml", 4)


def test_a_broken_import_inside_a_group_still_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "broken_group.py").write_text("import no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "COMMAND_GROUPS", ("broken_group",))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency"):
        cli.build_parser()
    sys.modules.pop("broken_group", None)


def test_log_json_is_accepted_before_or_after_the_command() -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["--log-json", "verify", "runs/x"]).log_json is True
    assert parser.parse_args(["verify", "runs/x", "--log-json"]).log_json is True
    assert parser.parse_args(["verify", "runs/x"]).log_json is False
