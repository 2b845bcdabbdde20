"""Check a finished sweep against single runs: for each row of results.parquet, write that point's run
config, run `python -m backtester run` on it in a fresh process, and compare the digests.

    python scripts/check_sweep.py runs/sweeps/<sweep_id> [--every K]

Exit code 0 when every checked row's digest equals its single run's digest. Whether the run ids
agree is printed too; they do when the sweep and the runs use the same code.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl

from backtester.config_file import dump_config
from backtester.sweep.config import decode_sweep_config
from backtester.sweep.plan import point_spec
from backtester.sweep.results import CONFIG, RESULTS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--every", type=int, default=1, help="check every K-th row (default 1)")
    parser.add_argument(
        "--pythonpath", help="PYTHONPATH of the `run` processes (default: this process's)"
    )
    args = parser.parse_args()
    config_path = args.sweep_dir / CONFIG
    cfg = decode_sweep_config(json.loads(config_path.read_text()), str(config_path))
    table = pl.read_parquet(args.sweep_dir / RESULTS)
    names = cfg.parameters()
    mismatches = checked = 0
    env = dict(os.environ)
    isolate = ["-P"] if args.pythonpath else []
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath
    with tempfile.TemporaryDirectory() as tmp:
        for row in table.iter_rows(named=True):
            if row["index"] % args.every or row["status"] != "ok":
                continue
            params = {name: row[f"param.{name}"] for name in names}
            spec = point_spec(cfg.base, params, row["seed"])
            config_file = Path(tmp) / f"point-{row['index']}.toml"
            config_file.write_text(dump_config(spec))
            done = subprocess.run(
                # -P: the working directory must not shadow --pythonpath's package.
                [
                    sys.executable,
                    *isolate,
                    "-m",
                    "backtester",
                    "run",
                    str(config_file),
                    "--out",
                    tmp,
                ],
                capture_output=True,
                text=True,
                check=False,
                env=env,
            )
            digest = next(
                (
                    line.split()[-1]
                    for line in done.stdout.splitlines()
                    if line.startswith("digest")
                ),
                None,
            )
            run_id = next(
                (
                    Path(line.split(":", 1)[1].split("(")[0].strip()).name
                    for line in done.stdout.splitlines()
                    if line.startswith("run directory:")
                ),
                None,
            )
            checked += 1
            same = digest == row["digest"]
            mismatches += not same
            print(
                f"point {row['index']:>4} {params}: sweep {row['digest'][:16]} "
                f"run {digest[:16] if digest else done.stderr.strip()[-200:]} "
                f"{'ok' if same else 'MISMATCH'}; run id "
                f"{'same' if run_id == row['run_id'] else f'differs ({run_id})'}"
            )
    print(f"{checked} point(s) checked, {mismatches} mismatch(es)")
    return 1 if mismatches or not checked else 0


if __name__ == "__main__":
    sys.exit(main())
