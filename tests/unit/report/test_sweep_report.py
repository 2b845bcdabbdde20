"""A sweep directory in the layout the sweep writes (results.parquet + manifest.json) in, a page with
the objective heatmap, a scatter per parameter and the top points linked to their run reports out."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from backtester import RunResult
from backtester.report.run_report import RunDirError
from backtester.report.sweep_report import load_sweep, write_sweep_report
from tests.report_support import GOLDEN_BARS, make_sweep_dir, write_run_dir


def _ranked_run_ids(page: str) -> list[str]:
    top = page[
        page.index('data-block="top"') : page.index("</table>", page.index('data-block="top"'))
    ]
    return re.findall(r"<code>(run\d)</code>", top)


def test_sweep_page_ranks_points_by_the_objective_and_notes_failures(tmp_path: Path) -> None:
    directory = make_sweep_dir(tmp_path)
    page = write_sweep_report(directory, top=3).read_text(encoding="utf-8")
    assert _ranked_run_ids(page) == ["run1", "run3", "run5"]
    assert "1 point(s) failed" in page and "need 1 &lt;= fast &lt; slow" in page
    charts = re.findall(r'data-chart="([^"]+)"', page)
    assert charts == ["heatmap", "scatter-0", "scatter-1", "scatter-2"]


def test_minimizing_reverses_the_ranking(tmp_path: Path) -> None:
    directory = make_sweep_dir(tmp_path, direction="minimize")
    sweep = load_sweep(directory)
    assert not sweep.maximize
    assert sweep.ranked()["run_id"].to_list()[:2] == ["run2", "run0"]


def test_top_point_with_a_run_directory_links_to_its_report_generated_on_demand(
    tmp_path: Path, small_run: RunResult
) -> None:
    directory = make_sweep_dir(tmp_path)
    run_dir = write_run_dir(small_run, tmp_path / "runs", "run1", GOLDEN_BARS)
    page = write_sweep_report(directory, top=2).read_text(encoding="utf-8")
    assert (run_dir / "report.html").is_file()
    assert '<a href="../../run1/report.html"><code>run1</code></a>' in page
    assert "<code>run3</code> (no run directory)" in page


def test_heatmap_axes_are_chosen_by_parameter_name(tmp_path: Path) -> None:
    directory = make_sweep_dir(tmp_path)
    page = write_sweep_report(directory, x="slow", y="fees.rate", top=1).read_text(encoding="utf-8")
    assert "sharpe: best over the other parameters, by slow and fees.rate" in page
    with pytest.raises(RunDirError, match="no parameter 'slowest'"):
        write_sweep_report(directory, x="slowest")


def test_an_objective_the_results_do_not_have_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="no column 'sortino'"):
        load_sweep(make_sweep_dir(tmp_path), objective="sortino")


def test_the_top_table_follows_the_configs_top_and_the_verdict_is_shown(tmp_path: Path) -> None:
    directory = make_sweep_dir(tmp_path)
    (directory / "sweep.json").write_text(json.dumps({"top": 2}))
    verdict = "Likely overfit: in 60% of the 12870 ways of splitting the data in halves, ..."
    selection = {"trials": 5, "periods": 720, "period_seconds": 3600.0, "pbo": 0.6}
    (directory / "overfitting.json").write_text(json.dumps(selection | {"verdict": verdict}))
    page = write_sweep_report(directory).read_text(encoding="utf-8")
    assert "Top 2 by sharpe" in page
    assert _ranked_run_ids(page) == ["run1", "run3"]
    block = page[page.index('data-block="overfitting"') :]
    block = block[: block.index("</section>")]
    assert "Can the best point be trusted?" in block
    assert verdict in block
    assert "periods of 1 h" in block and "n/a" in block  # no DSR in this file
    # The command line's --top still wins over the config's.
    assert _ranked_run_ids(write_sweep_report(directory, top=1).read_text()) == ["run1"]
