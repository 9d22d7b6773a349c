"""Human-readable evaluation output: a markdown report and a recall@K plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.metrics import CUTOFFS

TABLE_METRICS = ("recall@1", "recall@3", "recall@5", "recall@10", "recall@20", "recall@100", "mrr@10", "ndcg@10")


def markdown_report(metrics: dict[str, Any]) -> str:
    """Table of every system side by side, with pool size, query count and step timings."""
    systems: dict[str, dict[str, float]] = metrics["systems"]
    lines = [
        "# Evaluation report",
        "",
        f"Protocol: query = question title; a hit = the question's own first answer; "
        f"pool = all {metrics['pool_size']:,} corpus answers; {metrics['num_queries']:,} eval queries.",
        "",
        "| system | " + " | ".join(TABLE_METRICS) + " |",
        "|---|" + "---:|" * len(TABLE_METRICS),
    ]
    for name, values in systems.items():
        lines.append(f"| {name} | " + " | ".join(f"{values[m]:.4f}" for m in TABLE_METRICS) + " |")
    lines += ["", "precision@K for each system is in metrics.json (one relevant answer per query: recall@K / K).", ""]
    if metrics.get("timings_s"):
        lines += ["## Training time per step", "", "| step | seconds |", "|---|---:|"]
        lines += [f"| {step} | {secs:.1f} |" for step, secs in metrics["timings_s"].items()]
        lines.append("")
    return "\n".join(lines)


def recall_plot(metrics: dict[str, Any], path: Path) -> None:
    """recall@K curves of every system on a log-K axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2), dpi=120)
    for name, values in metrics["systems"].items():
        ax.plot(CUTOFFS, [values[f"recall@{k}"] for k in CUTOFFS], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xticks(CUTOFFS, [str(k) for k in CUTOFFS])
    ax.set_ylim(0, 1)
    ax.set_xlabel("K")
    ax.set_ylabel("recall@K")
    ax.set_title(f"{metrics['num_queries']:,} queries, pool of {metrics['pool_size']:,} answers")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
