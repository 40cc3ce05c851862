"""Run every benchmark in sequence; results go to bench/out/*.json and bench/out/report.md.

    python bench/run_all.py            # or: ./run bench
    python bench/run_all.py --only load,flash_sale
    python bench/run_all.py --quick    # smaller sizes, a smoke run (about 3 minutes)
    python bench/run_all.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
        # also load and the flash sale on PostgreSQL (fresh schemas, dropped afterwards),
        # the flash sale with one and with two bot processes

Each benchmark runs in its own process, one after the other (never two at once: they
would share the 2 cores and measure each other). The machine's load average is recorded
before and after each one, because other work on a shared VM skews the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import ROOT, machine_info, write_json

OUT = ROOT / "bench" / "out"

# name: (argv after the script, quick argv, timeout seconds)
BENCHMARKS: dict[str, tuple[list[str], list[str], int]] = {
    "dispatch": (
        ["bench/dispatch_cost.py", "--messages", "1000", "--rounds", "3"],
        ["bench/dispatch_cost.py", "--messages", "300", "--rounds", "1"],
        900,
    ),
    "load": (["bench/load.py"], ["bench/load.py", "--scale", "0.3"], 600),
    "flash_sale": (
        ["bench/flash_sale.py", "--buyers", "1000", "--stock", "100"],
        ["bench/flash_sale.py", "--buyers", "200", "--stock", "20"],
        600,
    ),
    "tracking_sweep": (
        ["bench/tracking_sweep.py", "--shipments", "10000", "--sample", "100"],
        ["bench/tracking_sweep.py", "--shipments", "1000", "--sample", "30"],
        1200,
    ),
    "epay_notify": (
        ["bench/epay_notify.py", "--orders", "1000", "--concurrency", "50"],
        ["bench/epay_notify.py", "--orders", "200", "--concurrency", "50"],
        900,
    ),
}


# Run only with --database-url, which is appended to their argv.
POSTGRES_BENCHMARKS: dict[str, tuple[list[str], list[str], int]] = {
    "load_postgres": (["bench/load.py"], ["bench/load.py", "--scale", "0.3"], 600),
    "flash_sale_postgres": (
        ["bench/flash_sale.py", "--buyers", "1000", "--stock", "100"],
        ["bench/flash_sale.py", "--buyers", "200", "--stock", "20"],
        600,
    ),
    "flash_sale_postgres_2p": (
        ["bench/flash_sale.py", "--buyers", "1000", "--stock", "100", "--processes", "2"],
        ["bench/flash_sale.py", "--buyers", "200", "--stock", "20", "--processes", "2"],
        600,
    ),
}


def run_one(name: str, argv: list[str], timeout: int) -> dict[str, Any]:
    json_path = OUT / f"{name}.json"
    json_path.unlink(missing_ok=True)
    command = [sys.executable, *argv, "--json", str(json_path)]
    print(f"== {name}: {' '.join(command[1:])}", flush=True)
    load_before = os.getloadavg()
    started = time.perf_counter()
    try:
        completed = subprocess.run(command, cwd=ROOT, timeout=timeout, check=False)
        code = completed.returncode
    except subprocess.TimeoutExpired:
        code = -1
        print(f"!! {name} timed out after {timeout} s", flush=True)
    wall = time.perf_counter() - started
    print(
        f"== {name}: exit {code}, {wall:.0f} s, load average {load_before[0]:.2f} → {os.getloadavg()[0]:.2f}\n",
        flush=True,
    )
    return {
        "command": "python " + " ".join(argv),
        "exit_code": code,
        "wall_s": round(wall, 1),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "json": str(json_path.relative_to(ROOT)) if json_path.exists() else None,
    }


def report(summary: dict[str, Any]) -> str:
    """Markdown of everything that ran (the tables that go into bench/RESULTS.md)."""
    m = summary["machine"]
    parts = [
        f"Machine: {m['nproc']} cores ({m['cpu_model']}), {m['ram_gib']} GiB, Python {m['python']}; "
        f"load average at start {m['loadavg_at_start'][0]:.2f}.",
        "",
    ]
    for name, run in summary["runs"].items():
        parts.append(
            f"### {name}: `{run['command']}` (exit {run['exit_code']}, {run['wall_s']:.0f} s, "
            f"load {run['loadavg_before'][0]:.2f} → {run['loadavg_after'][0]:.2f})"
        )
        parts.append("")
        if not run["json"]:
            continue
        data = json.loads((ROOT / run["json"]).read_text(encoding="utf-8"))
        if name == "dispatch":
            floor = data["echo: /echo command"]["cpu_ms_per_message"]
            parts.append("| scenario | CPU ms/msg | wall ms/msg | replies | × echo command |")
            parts.append("|---|---:|---:|---:|---:|")
            for scenario, r in data.items():
                parts.append(
                    f"| {scenario} | {r['cpu_ms_per_message']:.3f} | {r['wall_ms_per_message']:.3f} | "
                    f"{r['replies_per_message']:.0f} | {r['cpu_ms_per_message'] / floor:.2f} |"
                )
        elif "markdown" in data:
            parts.append(data["markdown"])
        elif name == "tracking_sweep":
            parts.append(tracking_markdown(data))
        parts.append("")
    return "\n".join(parts)


def tracking_markdown(data: dict[str, Any]) -> str:
    rows = [
        "| sweep | polled | wall s | shipments/s | wall ms/shipment | CPU ms/shipment | worst loop stall ms | events stored | outbox rows |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    named: list[tuple[str, dict[str, Any]]] = []
    for key, label in (
        ("production_provider", "sample: provider as the clock plugin builds it"),
        ("shared_transport", "sample: same, one shared httpx transport"),
        ("production_provider_traced", "sample: as built, under tracemalloc"),
    ):
        if key in data.get("sample", {}):
            named.append((label, data["sample"][key]))
    scale = data["scale"]
    n = scale["shipments"]
    named += [
        (f"{n:,}: first sweep (shared transport)", scale["first"]),
        (f"{n:,}: again at once", scale["again"]),
        (f"{n:,}: at now + interval", scale["after_interval"]),
    ]
    for label, r in named:
        rows.append(
            f"| {label} | {r['polled']} | {r['wall_s']:.2f} | {r['shipments_per_s']:.1f} | {r['ms_per_shipment']:.2f} | "
            f"{r['cpu_ms_per_shipment']:.2f} | {r['worst_event_loop_stall_ms']:.1f} | {r['events_stored']} | "
            f"{r['outbox_rows_created']} |"
        )
    traced = data.get("sample", {}).get("production_provider_traced", {})
    rows.append("")
    rows.append(
        f"Peak RSS {data['peak_rss_mib']} MiB (process at start {data['peak_rss_mib_at_start']} MiB, after the samples "
        f"{data.get('peak_rss_mib_after_sample', '-')} MiB); RSS after seeding {scale['rss_mib_after_seed']} MiB, after "
        f"each sweep {scale['first']['rss_mib_after']} / {scale['again']['rss_mib_after']} / "
        f"{scale['after_interval']['rss_mib_after']} MiB; tracemalloc peak {traced.get('tracemalloc_peak_mib', '-')} MiB; "
        f"seeding {n:,} orders {scale['seed_s']} s; database {scale['db_size_mib']} MiB."
    )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated subset of: "
        + ", ".join([*BENCHMARKS, *POSTGRES_BENCHMARKS])
        + " (the last ones need --database-url)",
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server (postgresql+asyncpg://...): also run "
        + ", ".join(POSTGRES_BENCHMARKS),
    )
    args = parser.parse_args()
    available = dict(BENCHMARKS)
    if args.database_url:
        for name, (full, quick, timeout) in POSTGRES_BENCHMARKS.items():
            extra = ["--database-url", args.database_url]
            available[name] = (full + extra, quick + extra, timeout)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    OUT.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"machine": machine_info(), "quick": args.quick, "runs": {}}
    started = time.perf_counter()
    for name in names:
        full, quick, timeout = available[name]
        summary["runs"][name] = run_one(name, quick if args.quick else full, timeout)
    summary["wall_s"] = round(time.perf_counter() - started, 1)
    write_json(OUT / "summary.json", summary)
    text = report(summary)
    (OUT / "report.md").write_text(text + "\n", encoding="utf-8")
    print(text)
    print(f"\ntotal {summary['wall_s']:.0f} s; JSON and report.md in {OUT.relative_to(ROOT)}/")
    failed = [name for name, run in summary["runs"].items() if run["exit_code"] != 0]
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
