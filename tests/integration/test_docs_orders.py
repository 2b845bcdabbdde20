"""docs/orders.md's example runs as written and trades its brackets."""

from __future__ import annotations

import re
from typing import Any

from tests.cli_support import REPO


def test_the_bracket_example_runs_and_its_exits_fill() -> None:
    text = (REPO / "docs" / "orders.md").read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    namespace: dict[str, Any] = {"__name__": "docs"}
    exec(compile(code, "docs/orders.md", "exec"), namespace)
    reasons = set(namespace["result"].trades["exit_reason"].to_list())
    assert {"signal", "stop_loss", "take_profit"} <= reasons
