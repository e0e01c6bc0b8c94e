"""latest.json (the headline figures with ratios) and report.md with its PNG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

QUICK = "**quick mode: 1 repetition, smaller loads**"
SYSTEMS = ("ours", "single_task", "canvas", "seed_app")
LABELS = {
    "ours": "shop (durable run per order)",
    "single_task": "one task per order",
    "canvas": "chain + group canvas",
    "seed_app": "seed app (Flask + 1 task, DB)",
}
SHORT = {"ours": "shop", "single_task": "single task", "canvas": "canvas", "seed_app": "seed app"}
COLOURS = {"ours": "tab:green", "single_task": "tab:blue", "canvas": "tab:orange", "seed_app": "tab:purple"}
# (scenario, figure, better) compared against every baseline
COMPARED = [
    ("pipeline_saturation", "orders_per_s", "higher"),
    ("pipeline_saturation", "cpu_ms_per_order", "lower"),
    ("pipeline_saturation", "efficiency", "higher"),
    ("pipeline_moderate", "e2e_p50_ms", "lower"),
    ("pipeline_moderate", "e2e_p99_ms", "lower"),
    ("pipeline_moderate", "cpu_ms_per_order", "lower"),
    ("backlog", "drain_per_s", "higher"),
    ("backlog", "time_to_empty_s", "lower"),
]
TARGETS = [  # (label, path in latest, comparison, bound): the issue "Durable order runs"
    ("pipeline >= 100 orders/s", "pipeline.orders_per_s", ">=", 100),
    ("pipeline >= 0.8x seed app", "ratios.throughput_vs_seed_app", ">=", 0.8),
    ("pipeline >= 1.2x canvas", "ratios.throughput_vs_baseline", ">=", 1.2),
    ("worker CPU <= 12 ms/order", "pipeline.cpu_ms_per_order", "<=", 12),
    ("e2e p50 @20/s <= single task", "ratios.e2e_p50_vs_single_task", "<=", 1),
    ("checkout p99 <= 10 ms @50/s", "checkout.p99_ms_at_50", "<=", 10),
    ("checkout p99 <= 25 ms @100/s", "checkout.p99_ms", "<=", 25),
    ("backlog drain >= 100 orders/s", "backlog.drain_per_s", ">=", 100),
    ("recovery <= 30 s (workers only)", "recovery.seconds", "<=", 30),
]


def med(node: Any) -> Any:
    return node.get("median") if isinstance(node, dict) else node


def figure(result: dict[str, Any], system: str, scenario: str, name: str) -> Any:
    figs = result["figures"] if system == "ours" else result["figures"]["baselines"].get(system, {})
    return med(figs.get(scenario, {}).get(name))


def _ratio(a: Any, b: Any) -> float | None:
    return round(a / b, 2) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None


def checkout_at(result: dict[str, Any], rate: float) -> dict[str, Any]:
    for row in result["figures"]["checkout"]:
        if med(row["offered_per_s"]) == rate:
            return row
    return {}


def headline(result: dict[str, Any]) -> dict[str, Any]:
    f = lambda s, sc, n: figure(result, s, sc, n)  # noqa: E731
    c100 = checkout_at(result, 100)
    c50 = checkout_at(result, 50)
    latest: dict[str, Any] = {
        "checkout": {
            "p99_ms": med(c100.get("p99_ms")),
            "p50_ms": med(c100.get("p50_ms")),
            "offered_per_s": 100,
            "p99_ms_at_50": med(c50.get("p99_ms")),
        },
        "pipeline": {
            "orders_per_s": f("ours", "pipeline_saturation", "orders_per_s"),
            "e2e_p50_ms": f("ours", "pipeline_moderate", "e2e_p50_ms"),
            "e2e_p99_ms": f("ours", "pipeline_moderate", "e2e_p99_ms"),
            "saturation_e2e_p50_ms": f("ours", "pipeline_saturation", "e2e_p50_ms"),
            "cpu_ms_per_order": f("ours", "pipeline_saturation", "cpu_ms_per_order"),
            "efficiency": f("ours", "pipeline_saturation", "efficiency"),
        },
        "backlog": {
            "drain_per_s": f("ours", "backlog", "drain_per_s"),
            "time_to_empty_s": f("ours", "backlog", "time_to_empty_s"),
            "orders": f("ours", "backlog", "orders"),
        },
        "recovery": {
            "seconds": med(result["figures"]["recovery"]["seconds"]),
            "all_in_flight_completed_s": med(result["figures"]["recovery"]["all_in_flight_completed_s"]),
        },
        "baselines": {},
        "ratios": {},
    }
    for b in SYSTEMS[1:]:
        latest["baselines"][b] = {
            "orders_per_s": f(b, "pipeline_saturation", "orders_per_s"),
            "e2e_p50_ms": f(b, "pipeline_moderate", "e2e_p50_ms"),
            "cpu_ms_per_order": f(b, "pipeline_saturation", "cpu_ms_per_order"),
            "drain_per_s": f(b, "backlog", "drain_per_s"),
        }
        for scenario, name, _ in COMPARED:
            key = f"{scenario}.{name}_vs_{b}"
            latest["ratios"][key] = _ratio(f("ours", scenario, name), f(b, scenario, name))
    r = latest["ratios"]
    r["throughput_vs_baseline"] = r["pipeline_saturation.orders_per_s_vs_canvas"]
    r["throughput_vs_single_task"] = r["pipeline_saturation.orders_per_s_vs_single_task"]
    r["e2e_p50_vs_single_task"] = r["pipeline_moderate.e2e_p50_ms_vs_single_task"]
    r["cpu_vs_canvas"] = r["pipeline_saturation.cpu_ms_per_order_vs_canvas"]
    r["throughput_vs_seed_app"] = r["pipeline_saturation.orders_per_s_vs_seed_app"]
    cfg = result["config"]
    latest["run"] = {
        "at": result["started_at"],
        "quick": cfg["quick"],
        "repetitions": cfg["repetitions"],
        "workers": cfg["worker"],
        "load_average_at_start": result["machine"]["load_average_at_start"],
        "seconds": result.get("seconds"),
    }
    return latest


def _get(latest: dict[str, Any], path: str) -> Any:
    node: Any = latest
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


# --- plots --------------------------------------------------------------------


def plot_checkout(result: dict[str, Any], out: Path) -> str:
    rows = result["figures"]["checkout"]
    rates = [med(r["offered_per_s"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    for q in ("p50_ms", "p95_ms", "p99_ms"):
        mids = [med(r[q]) for r in rows]
        lo = [m - r[q]["min"] for m, r in zip(mids, rows, strict=True)]
        hi = [r[q]["max"] - m for m, r in zip(mids, rows, strict=True)]
        ax.errorbar(rates, mids, yerr=[lo, hi], marker="o", capsize=3, label=q.replace("_ms", ""))
    ax.axhline(10, color="grey", linestyle=":", label="target p99 10 ms")
    ax.set(
        xlabel="offered load (orders/s, open loop)",
        ylabel="POST /orders latency (ms)",
        yscale="log",
        title="Checkout latency while the workers run",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "checkout-latency.png", dpi=110)
    plt.close(fig)
    return "checkout-latency.png"


def plot_sweep(result: dict[str, Any], out: Path) -> str | None:
    sweep = result.get("sweep")
    if not sweep:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for system in (s for s in SYSTEMS if s in sweep):
        points = sorted((int(c), v["orders_per_s"]) for c, v in sweep[system].items())
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=LABELS[system])
    cs = sorted(int(c) for c in sweep["ours"])
    ax.plot(cs, [c / 0.045 for c in cs], linestyle=":", color="grey", label="ideal (slots / 45 ms)")
    ax.set(
        xlabel="worker concurrency (prefork processes, 2 workers)",
        ylabel="sustained orders/s",
        title="Throughput against worker concurrency",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "throughput-concurrency.png", dpi=110)
    plt.close(fig)
    return "throughput-concurrency.png"


def plot_comparison(result: dict[str, Any], out: Path) -> str:
    panels = [
        ("pipeline_saturation", "orders_per_s", "sustained orders/s"),
        ("pipeline_moderate", "e2e_p50_ms", "accepted → completed p50 (ms) @20/s"),
        ("pipeline_saturation", "cpu_ms_per_order", "worker CPU ms / order"),
        ("backlog", "drain_per_s", "backlog drain orders/s"),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.6))
    for ax, (scenario, name, title) in zip(axes, panels, strict=True):
        raw = [figure(result, s, scenario, name) for s in SYSTEMS]
        values = [v or 0 for v in raw]
        ax.bar(range(len(SYSTEMS)), values, color=[COLOURS[s] for s in SYSTEMS])
        ax.set_xticks(range(len(SYSTEMS)), [SHORT[s] for s in SYSTEMS], fontsize=8)
        ax.set_title(title, fontsize=9)
        for i, (v, r) in enumerate(zip(values, raw, strict=True)):
            ax.text(i, v, "n/a" if r is None else f"{v:g}", ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "comparison.png", dpi=110)
    plt.close(fig)
    return "comparison.png"


# --- markdown -----------------------------------------------------------------


def _cell(node: Any) -> str:
    if isinstance(node, dict) and "median" in node:
        if node["n"] > 1:
            return f"{node['median']:g} ({node['min']:g}–{node['max']:g})"
        return f"{node['median']:g}"
    return "—" if node is None else str(node)


def write_report(result: dict[str, Any], out: Path) -> None:
    latest, cfg, figs = result["latest"], result["config"], result["figures"]
    plots = [plot_checkout(result, out), plot_sweep(result, out), plot_comparison(result, out)]
    reps = cfg["repetitions"]
    lines = [
        "# shop benchmarks",
        "",
        f"Run at {result['started_at']} in {result.get('seconds')} s — "
        f"{QUICK if cfg['quick'] else f'{reps} repetitions'}; "
        "cells show median (min–max) over the repetitions.",
        "",
        f"Machine: {result['machine']['cpus']} CPUs, {result['machine']['mem_gib']} GiB, "
        f"{result['machine']['platform']}, Python {result['machine']['python']}. "
        "Load average at start "
        f"{', '.join(f'{x:.2f}' for x in result['machine']['load_average_at_start'])}, at end "
        f"{', '.join(f'{x:.2f}' for x in result.get('load_average_at_end', []))} "
        "(web, workers, PostgreSQL, Redis and the load generator share these 2 cores).",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()) + ".",
        "",
        f"Set-up: PostgreSQL, own redis-server, gunicorn gthread {cfg['gunicorn_workers']}×"
        f"{cfg['gunicorn_threads']}, Celery {cfg['worker']['pool']} workers: "
        f"{cfg['worker']['processes']} "
        f"processes, {cfg['worker']['concurrency']} slots in all, no beat (relay and sweep run inside the workers), "
        "SIMULATED_LATENCY_SCALE=0.01, LOG_LEVEL=WARNING. Baselines: their own Celery apps "
        "and workers with the same pool, slots, Redis and delivery settings (acks late, "
        "prefetch 1, no results), orders sent "
        "straight to the broker (no web, no database) — except the seed app, the worked "
        "example's Flask app as written: its own gunicorn (same workers and threads), "
        "PostgreSQL database and one Celery task per order doing the shop's integrations in "
        "sequence (charge row, maildir email, fpdf2 invoice, simulated warehouse); orders "
        "through POST /orders, pipeline figures only (no backlog, not in the sweep).",
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    for label, path, op, bound in TARGETS:
        value = _get(latest, path)
        met = value is not None and (value >= bound if op == ">=" else value <= bound)
        lines.append(f"| {label} | {value} | {'yes' if met else '**no**'} |")
    lines += [
        "",
        "## Ours against the baselines",
        "",
        "| figure | "
        + " | ".join(LABELS[s] for s in SYSTEMS)
        + " | "
        + " | ".join(f"shop ÷ {SHORT[b]}" for b in SYSTEMS[1:])
        + " |",
        "|---" * (2 * len(SYSTEMS)) + "|",
    ]
    for scenario, name, better in COMPARED:
        cells = [_cell(figs.get(scenario, {}).get(name))]
        cells += [_cell(figs["baselines"].get(b, {}).get(scenario, {}).get(name)) for b in SYSTEMS[1:]]
        ratios = [latest["ratios"].get(f"{scenario}.{name}_vs_{b}") for b in SYSTEMS[1:]]
        lines.append(
            f"| {scenario} {name} ({better} is better) | "
            + " | ".join(cells)
            + " | "
            + " | ".join(str(r) for r in ratios)
            + " |"
        )
    lines += [
        "",
        "## Checkout: POST /orders at fixed offered loads (open loop, workers running)",
        "",
        "| offered/s | accepted/s | p50 ms | p95 ms | p99 ms | max ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in figs["checkout"]:
        lines.append(
            "| "
            + " | ".join(
                _cell(row[k])
                for k in (
                    "offered_per_s",
                    "throughput_per_s",
                    "p50_ms",
                    "p95_ms",
                    "p99_ms",
                    "max_ms",
                    "errors",
                )
            )
            + " |"
        )
    lines += [
        "",
        "## Pipeline, backlog, recovery (shop)",
        "",
        "| scenario | figure | value |",
        "|---|---|---|",
    ]
    for scenario in ("pipeline_moderate", "pipeline_saturation", "backlog", "recovery"):
        for name, node in figs[scenario].items():
            lines.append(f"| {scenario} | {name} | {_cell(node)} |")
    lines += [
        "",
        "Recovery: `seconds` is the time from SIGKILL of one worker's process group until the last "
        "step it was running has been claimed again (lease expiry + sweeper); "
        "`all_in_flight_completed_s` until every order in flight at the kill completed "
        "(messages the "
        "dead worker had reserved come back after the broker visibility timeout).",
        "",
    ]
    if result.get("sweep"):
        swept = [s for s in SYSTEMS if s in result["sweep"]]
        lines += [
            "## Throughput against worker concurrency (1 repetition)",
            "",
            "| slots | " + " | ".join(LABELS[s] for s in swept) + " | ideal |",
            "|---" * (len(swept) + 2) + "|",
        ]
        for c in sorted(result["sweep"]["ours"], key=int):
            vals = [str(result["sweep"][s][c]["orders_per_s"]) for s in swept]
            lines.append(f"| {c} | " + " | ".join(vals) + f" | {int(c) / 0.045:.0f} |")
        lines.append("")
    lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots if p] + [""]
    if result.get("profile"):
        lines += ["## Profile (py-spy, saturation run)", ""]
        for name, summary in result["profile"].items():
            lines += [f"### {name} ({summary['samples']} samples), top inclusive", "", "```"]
            lines += [f"{p:5.1f}%  {f}" for f, p in summary["inclusive"][:20]] + ["```", ""]
    (out / "report.md").write_text("\n".join(lines))
