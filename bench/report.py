"""Writes one run's results: ``<stamp>.json`` (everything), ``<stamp>.md`` (tables) and
``<stamp>.png`` (latency distributions, when matplotlib is installed: extra ``[bench]``)."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

Renderer = Callable[[dict[str, Any]], list[str]]


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _pct(s: dict[str, Any]) -> str:
    if not s.get("n"):
        return "-"
    return f"{s['p50_ms']} / {s['p90_ms']} / {s['p99_ms']} / {s['max_ms']}"


def _latency(section: dict[str, Any]) -> list[str]:
    rows = [
        [
            r["db"],
            f"{r['rate_per_s']:g}",
            r["e2e_from_200"].get("n", 0),
            _pct(r["e2e_from_200"]),
            _pct(r["hop_baseline"]),
            r["p50_over_hop_p50"],
            _pct(r["post"]),
            r["lost"],
            f"{r['load'][0][0]} -> {r['load'][1][0]}",
        ]
        for r in section["rows"]
    ]
    header = [
        "db",
        "msg/s",
        "n",
        "POST 200 -> arrival p50/p90/p99/max ms",
        "baseline: direct hop p50/p90/p99/max ms",
        "p50 ratio",
        "POST latency p50/p90/p99/max ms",
        "lost",
        "load 1 min",
    ]
    return [
        "## End-to-end latency (POST 200 -> receiver arrival)",
        "",
        "Baseline: the bench client POSTing the same body straight to the same receiver"
        " (one HTTP hop, send -> arrival), interleaved round by round with the broker runs.",
        "",
        *_table(header, rows),
    ]


def _ingest(section: dict[str, Any]) -> list[str]:
    header = [
        "db",
        "deployment",
        "c",
        "tidings req/s",
        "raw ASGI req/s",
        "of raw ASGI",
        "raw driver rows/s",
        "of raw driver",
        "tidings p50 / p99 ms",
        "raw ASGI p50 ms",
        "sustained ingest+delivery msg/s",
        "drain s",
        "errors",
        "load 1 min",
    ]
    rows = [
        [
            r["db"],
            r.get("topology", "one"),
            r["connections"],
            r["tidings_rps"],
            r["raw_asgi_rps"],
            f"{r['of_raw_asgi']:.1%}",
            r["raw_driver_rows_per_s"],
            f"{r['of_raw_driver']:.2f}x",
            f"{r['tidings_p50_ms']} / {r['tidings_p99_ms']}",
            r["raw_p50_ms"],
            r["sustained_msg_per_s"],
            r["drain_s"],
            r["errors"],
            " ".join(str(x) for x in r["load"]),
        ]
        for r in section["rows"]
    ]
    return [
        "## Ingest: durable POST /queues/{id}/messages (wrk -t1, one listener)",
        "",
        "Medians over interleaved rounds; `of raw ASGI` is the median of per-round ratios to"
        " the raw ASGI app run just before; the raw driver is one commit per row. Sustained ="
        " messages / (run + time until the receiver had them all).",
        "",
        *_table(header, rows),
    ]


def _delivery(section: dict[str, Any]) -> list[str]:
    header = ["db", "backlog", "in flight", "tidings deliveries/s", "raw aiohttp req/s", "ratio"]
    header.append("load 1 min")
    rows = [
        [
            r["db"],
            r["backlog"],
            r["concurrency"],
            r["tidings_per_s"],
            r["raw_client_per_s"],
            f"{r['of_raw_client']:.1%}",
            " ".join(str(x) for x in r["load"]),
        ]
        for r in section["rows"]
    ]
    return [
        "## Delivery throughput: draining a backlog to one fast receiver",
        "",
        "Baseline: a plain aiohttp ClientSession loop posting the same body to the same"
        " receiver with the same number in flight, run before and after each tidings run.",
        "",
        *_table(header, rows),
    ]


def _get(section: dict[str, Any]) -> list[str]:
    header = ["db", "GET of one", "c", "tidings req/s", "raw ASGI req/s", "of raw ASGI"]
    header += ["p50 / p99 ms", "load 1 min"]
    rows = [
        [
            r["db"],
            r.get("resource", "queue"),
            r["connections"],
            r["tidings_per_s"],
            r["raw_asgi_per_s"],
            f"{r['of_raw_asgi']:.1%}",
            f"{r['p50_ms']} / {r['p99_ms']}",
            " ".join(str(x) for x in r["load"]),
        ]
        for r in section["rows"]
    ]
    return [
        "## Reads: GET of one queue, message and listener (wrk -t1)",
        "",
        "Baseline: the raw ASGI app answering a same-shaped queue JSON, run before each"
        " tidings round (one server per round, the three resources in turn); `of raw"
        " ASGI` is the median of per-round ratios.",
        "",
        *_table(header, rows),
    ]


def _fanout(section: dict[str, Any]) -> list[str]:
    header = [
        "db",
        "listeners",
        "msg/s",
        "deliveries/s",
        "offered/s",
        "of offered",
        "lag p50 ms (median of listeners)",
        "p50 spread ms",
        "worst p99 ms",
        "delivered / expected",
        "load 1 min",
    ]
    rows = [
        [
            r["db"],
            r["listeners"],
            f"{r['rate_per_s']:g}",
            r["deliveries_per_s"],
            r["offered_per_s"],
            f"{r['of_offered']:.1%}",
            r["lag_p50_ms_median"],
            r["lag_p50_ms_spread"],
            r["lag_p99_ms_worst"],
            f"{r['deliveries']} / {r['expected']}",
            f"{r['load'][0][0]} -> {r['load'][1][0]}",
        ]
        for r in section["rows"]
    ]
    return [
        "## Fan-out: one message rate, 1 / 10 / 100 listeners",
        "",
        "Lag = POST 200 -> arrival at each listener. Baseline: the offered delivery rate"
        " (messages/s x listeners) in the same run.",
        "",
        *_table(header, rows),
    ]


def _memory(section: dict[str, Any]) -> list[str]:
    header = ["db", "pending deliveries", "peak RSS MiB", "of 1,000-pending peak", "RSS MiB"]
    header.append("load 1 min")
    rows = [
        [
            r["db"],
            r["pending"],
            round(r["peak_rss_kib"] / 1024, 1),
            f"{r['of_baseline_peak']:.2f}x",
            " ".join(str(round(k / 1024)) for k in r["rss_samples_kib"]),
            r["load"][0],
        ]
        for r in section["rows"]
    ]
    return [
        "## Memory: peak RSS with pending deliveries to a receiver that is down",
        "",
        "Baseline: the same server, settings and run time with 1,000 pending. Peak RSS is"
        " VmHWM summed over the server process and its worker; RSS sampled once a second.",
        "",
        *_table(header, rows),
    ]


def _publishing(section: dict[str, Any]) -> list[str]:
    """Each publishing scenario measures something of its own (bench/publishing.py):
    its ratio and its scalar figures, as printed while it ran."""
    header = ["scenario", "db", "ratio", "figures"]
    rows = [
        [
            r.get("scenario", ""),
            r.get("db", ""),
            r.get("ratio", ""),
            ", ".join(
                f"{k} {v}"
                for k, v in r.items()
                if k not in ("scenario", "db", "ratio") and isinstance(v, int | float | str)
            ),
        ]
        for r in section["rows"]
    ]
    return ["## Publishing guarantees (issue 14; bench/publishing.py)", "", *_table(header, rows)]


def _pipeline(section: dict[str, Any]) -> list[str]:
    header = [
        "tidings db",
        "tidings req/s",
        "pipeline req/s",
        "tidings / pipeline",
        "raw ASGI req/s",
        "tidings / pipeline of raw ASGI",
        "sustained msg/s tidings / pipeline",
        "errors",
    ]
    rows = [
        [
            r["db"],
            r["tidings_rps"],
            r["pipeline_rps"],
            f"**{r['tidings_over_pipeline']:.1f}x**",
            r["raw_asgi_rps"],
            f"{r['tidings_of_raw']:.3f} / {r['pipeline_of_raw']:.3f}",
            f"{r['tidings_sustained']} / {r['pipeline_sustained']}",
            r["errors"],
        ]
        for r in section["rows"]
    ]
    return [
        "## Against FastAPI + Celery + RabbitMQ + PostgreSQL (issue 18; bench/pipeline.py)",
        "",
        "Durable ingest at c=64, one listener on the same receiver; medians of the rounds.",
        "",
        *_table(header, rows),
    ]


RENDERERS: dict[str, Renderer] = {
    "pipeline": _pipeline,
    "publishing": _publishing,
    "fanout": _fanout,
    "memory": _memory,
    "latency": _latency,
    "ingest": _ingest,
    "delivery": _delivery,
    "get": _get,
}


def _plot(sections: list[dict[str, Any]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    series = [
        (f"{s['name']} {label}", values)
        for s in sections
        for label, values in s.get("plot", {}).items()
        if values
    ]
    if not series:
        return False
    fig, ax = plt.subplots(figsize=(10, 6))
    for label, values in series:
        ordered = sorted(values)
        n = len(ordered)
        ax.plot(ordered, [(i + 1) / n for i in range(n)], label=f"{label} (n={n})")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("milliseconds")
    ax.set_ylabel("fraction of samples (CDF)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write(out_dir: Path, stamp: str, meta: dict[str, Any], sections: list[dict[str, Any]]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    base = out_dir / stamp
    meta = {**meta, "python": platform.python_version(), "machine": platform.machine()}
    for section in sections:
        plot: dict[str, list[float]] = {}
        for row in section["rows"]:
            for label, values in row.pop("samples_ms", {}).items():
                plot[f"{row.get('db', '')} {row.get('rate_per_s', '')}/s {label}"] = values
        section["plot"] = plot
    plotted = _plot(sections, base.with_suffix(".png"))
    for section in sections:
        section.pop("plot", None)
    # The figures first: a report that cannot be rendered still keeps them.
    base.with_suffix(".json").write_text(json.dumps({"meta": meta, "sections": sections}, indent=1))
    lines = [f"# tidings benchmarks {stamp}", ""]
    lines += [f"- {k}: {v}" for k, v in meta.items()]
    if plotted:
        lines += [f"- latency distributions: {base.with_suffix('.png').name}"]
    for section in sections:
        lines += ["", *RENDERERS[section["name"]](section)]
    base.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return base.with_suffix(".md")
