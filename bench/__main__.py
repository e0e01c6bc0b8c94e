"""``python -m bench [--quick]``: run the benchmarks, write bench/results/, render the report."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from bench.report import headline, write_report
from bench.run import RESULTS, Config, run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one repetition, smaller loads (< 2 minutes)")
    parser.add_argument("--repetitions", type=int)
    parser.add_argument("--backlog-orders", type=int, dest="backlog_orders")
    parser.add_argument("--profile", action="store_true", help="py-spy the worker and web during saturation")
    parser.add_argument("--no-sweep", action="store_true", help="skip the worker-concurrency sweep")
    args = parser.parse_args()
    cfg = Config.make(
        args.quick,
        repetitions=args.repetitions,
        backlog_orders=args.backlog_orders,
        profile=args.profile or None,
    )
    if args.no_sweep:
        cfg.sweep = []
    result = run(cfg)
    result["latest"] = headline(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"{stamp}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (RESULTS / "latest.json").write_text(json.dumps(result["latest"], indent=2) + "\n")
    write_report(result, RESULTS)
    print(json.dumps(result["latest"], indent=2))
    print(f"wrote {RESULTS / (stamp + '.json')}, latest.json, report.md")


if __name__ == "__main__":
    main()
