"""python -m benchmarks [--sizes 100,1000,10000] [--latency-ms 20] [--quick]

Recreates the benchmark database (DATABASE_URL, whose name must contain "bench"; by default a
SQLite file in the temp directory), migrates it, then measures:

1. per tenant size, in a process of its own with the sandbox in another: the employee sync and
   the attendance sync, each twice (the second run is the steady state);
2. the tenant log page and the admin run list with 1,000,000 runs and 5,000,000 errors;
3. the dispatcher enqueuing 10,000 tenants due in the same minute, then its minute tick with
   10,000 runs queued behind one worker (the Procfile's `worker` and `dispatcher` processes);
4. bounded history: 400 days of daily runs for 1,000 tenants, then one more year with the
   nightly prune, the log pages measured before and after.

Prints a table and writes docs/PERFORMANCE.md (``--quick``: sizes 100 and 1,000, 10,000 runs of
history, 100 tenants for a year; it writes the document only when ``--output`` is given, so
quick figures never replace full ones).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime
from pathlib import Path

from . import env

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", help="employee counts, comma-separated (default 100,1000,10000)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="added to every API request")
    parser.add_argument("--quick", action="store_true", help="sizes 100,1000 and 10,000 runs")
    parser.add_argument("--runs", type=int, help="runs in the history (default 1,000,000)")
    parser.add_argument("--errors", type=int, help="errors in the history (default 5 × runs)")
    parser.add_argument("--due-tenants", type=int, default=10_000)
    parser.add_argument(
        "--backlog-runs", type=int, default=10_000, help="runs queued in front of the tick"
    )
    parser.add_argument(
        "--history-tenants", type=int, help="tenants with a year of daily runs (default 1,000)"
    )
    parser.add_argument(
        "--only",
        default="sync,pages,dispatch,history",
        help="parts to run, comma-separated: sync, pages, dispatch, history",
    )
    parser.add_argument(
        "--output", type=Path, help="the Markdown report (default docs/PERFORMANCE.md)"
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        help="measure nothing: print and write the report of an earlier run's results.json",
    )
    args = parser.parse_args(argv)
    default_sizes = "100,1000" if args.quick else "100,1000,10000"
    args.sizes = [int(s.replace("_", "")) for s in (args.sizes or default_sizes).split(",") if s]
    args.runs = args.runs or (10_000 if args.quick else 1_000_000)
    args.errors = args.errors if args.errors is not None else 5 * args.runs
    args.parts = {p.strip() for p in args.only.split(",") if p.strip()}
    args.history_tenants = args.history_tenants or (100 if args.quick else 1000)
    if args.output is None and not args.quick:
        args.output = ROOT / "docs" / "PERFORMANCE.md"
    return args


def run_size(size: int, latency_ms: float, workdir: Path) -> dict:
    out = workdir / f"sync-{size}.json"
    command = [
        sys.executable, "-m", "benchmarks.sync_bench",
        "--size", str(size), "--latency-ms", str(latency_ms), "--out", str(out),
    ]  # fmt: skip
    print(f"  {size:,} employees ...", flush=True)
    subprocess.run(command, cwd=ROOT, check=True)
    return json.loads(out.read_text())


KEPT = re.compile(r"<!-- kept:([\w-]+) -->.*?<!-- /kept:\1 -->", re.S)


def kept_sections(text: str) -> list[str]:
    """Sections measured by other commands (``<!-- kept:NAME -->`` … ``<!-- /kept:NAME -->``,
    benchmarks/realtime_bench.py's and push_bench.py's), carried over when this command
    rewrites the document."""
    return [match.group(0) for match in KEPT.finditer(text)]


def write_report(results: dict, output: Path | None) -> int:
    from . import report

    print()
    print(report.console(results))
    if output:
        argv = results["meta"]["argv"]
        command = "python -m benchmarks" + (" " + " ".join(argv) if argv else "")
        if results["machine"]["database"].startswith("PostgreSQL"):
            command = "DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench " + command
        output.parent.mkdir(parents=True, exist_ok=True)
        kept = kept_sections(output.read_text() if output.exists() else "")
        output.write_text(
            report.markdown(results, command=command, diagnosis=report.diagnosis(results))
            + "".join(f"\n{block}\n" for block in kept)
        )
        print(f"written: {output}")
    failed = [t for t in report.evaluate(results) if t["ok"] is False]
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        return write_report(json.loads(args.from_json.read_text()), args.output)
    env.configure()
    from . import database

    began = time.perf_counter()
    print(f"database: {database.recreate()} (recreated)", flush=True)
    env.setup_django()
    database.migrate()
    from django.conf import settings

    from . import machine

    results: dict = {
        "meta": {
            "latency": args.latency_ms / 1000,
            "concurrency": settings.SYNC_CONCURRENCY,
            "kot_concurrency": settings.KOT_MAX_CONCURRENCY,
            "kot_rate_limit": settings.KOT_RATE_LIMIT,
            "senselink_rate_limit": settings.SENSELINK_RATE_LIMIT,
            "date": datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            "argv": sys.argv[1:] if argv is None else argv,
        },
        "machine": machine.describe(database.server_version()),
        "due_tenants": args.due_tenants,
    }
    workdir = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    if "sync" in args.parts:
        print(f"syncs at {args.latency_ms:g} ms per request:", flush=True)
        results["sizes"] = [run_size(n, args.latency_ms, workdir) for n in args.sizes]
    if "pages" in args.parts:
        from .pages_bench import bench_pages

        print(f"pages with {args.runs:,} runs and {args.errors:,} errors ...", flush=True)
        results["pages"] = bench_pages(runs=args.runs, errors=args.errors)
    if "dispatch" in args.parts:
        print(f"dispatch of {args.due_tenants:,} due tenants ...", flush=True)
        try:
            from .dispatch_bench import bench_dispatch

            results["dispatch"] = bench_dispatch(tenants=args.due_tenants)
        except Exception as exc:  # the dispatcher is someone else's work in progress
            traceback.print_exc()
            results["dispatch"] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"minute tick behind {args.backlog_runs:,} queued runs ...", flush=True)
        try:
            from .tick_bench import bench_ticks

            results["ticks"] = bench_ticks(
                runs=args.backlog_runs,
                ticks=2 if args.quick else 3,
                old_layout_seconds=90 if args.quick else 150,
            )
        except Exception as exc:
            traceback.print_exc()
            results["ticks"] = {"error": f"{type(exc).__name__}: {exc}"}
    if "history" in args.parts:
        from .history_bench import bench_history

        print(
            f"a year of daily runs for {args.history_tenants:,} tenants, pruned nightly ...",
            flush=True,
        )
        try:
            results["history"] = bench_history(tenants=args.history_tenants)
        except Exception as exc:
            traceback.print_exc()
            results["history"] = {"error": f"{type(exc).__name__}: {exc}"}
    results["meta"]["seconds"] = time.perf_counter() - began

    raw = workdir / "results.json"
    raw.write_text(json.dumps(results, ensure_ascii=False, indent=1))
    print(f"raw figures: {raw}")
    return write_report(results, args.output)


if __name__ == "__main__":
    sys.exit(main())
