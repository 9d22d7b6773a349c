"""Human-readable evaluation output: a markdown report and a recall@K plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.metrics import CUTOFFS

TABLE_METRICS = ("recall@1", "recall@3", "recall@5", "recall@10", "recall@20", "recall@100", "mrr@10", "ndcg@10")
SETS = {"eval": "Eval questions", "train_holdout": "Training questions held out from all training"}


def _table(systems: dict[str, dict[str, float]], columns=TABLE_METRICS) -> list[str]:
    lines = ["| system | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for name, values in systems.items():
        lines.append(f"| {name} | " + " | ".join(f"{values[m]:.4f}" for m in columns) + " |")
    return lines


def markdown_report(metrics: dict[str, Any]) -> str:
    """Every system side by side per query set, the low-overlap subset, the ceiling, step timings."""
    lines = [
        "# Evaluation report",
        "",
        "Protocol: query = question title; a hit = the question's own first answer; pool = every corpus answer. "
        "precision@K is in metrics.json (one relevant answer per query: precision@K = recall@K / K).",
        "",
    ]
    for key, title in SETS.items():
        if key not in metrics:
            continue
        m = metrics[key]
        lines += [f"## {title}", "", f"{m['num_queries']:,} queries, pool of {m['pool_size']:,} answers, "
                  f"reranker over the top {m['reranked_candidates']}.", ""]
        lines += _table(m["systems"]) + [""]
        low = m.get("low_overlap")
        if low and low["systems"]:
            lines += [f"Questions worded unlike any training question ({low['definition']}): "
                      f"{low['num_queries']:,} queries.", ""]
            lines += _table(low["systems"], ("recall@1", "recall@10", "mrr@10")) + [""]
    if "ceiling" in metrics:
        c = metrics["ceiling"]
        lines += ["## Ceiling", "",
                  f"{c['eval_queries_with_near_duplicate']:.1%} of eval questions have a near-identical question "
                  f"(title cosine >= {c['near_duplicate_threshold']}) whose first answer is a different corpus entry; "
                  "for those the single gold label often marks a good answer as a miss.", ""]
        if "reranked_top1" in c:
            a = c["reranked_top1"]
            shares = {float(k.rsplit("_", 1)[1]): v for k, v in a.items() if k.startswith("misses_to_question")}
            reranked = metrics.get("eval", {}).get("systems", {}).get("retrieval + rerank", {}).get("recall@1")
            lines += [f"Of the eval questions, {a['top1_misses']:.1%} get a wrong top-1 answer from retrieval + rerank; "
                      + ", ".join(f"{v:.1%} get one written for a question of title cosine >= {t} to theirs"
                                  for t, v in sorted(shares.items()))
                      + ". Those are the misses that label noise of the single-gold protocol can explain: counting "
                      "them as hits would raise recall@1 only by that share"
                      + (f" ({reranked:.4f} -> {reranked + shares[min(shares)]:.4f} at cosine >= {min(shares)})"
                         if reranked is not None and shares else "")
                      + "; the other misses are ranking errors.", ""]
    if metrics.get("fine_tune_history"):
        lines += ["## Encoder fine-tuning", "", "| epoch | loss | validation MRR@10 |", "|---:|---:|---:|"]
        lines += [f"| {h['epoch']} | {h['loss']:.4f} | {h.get('validation', float('nan')):.4f} |" for h in metrics["fine_tune_history"]]
        lines.append("")
    if metrics.get("timings_s"):
        lines += ["## Training time per step", "", "| step | seconds |", "|---|---:|"]
        lines += [f"| {step} | {secs:.1f} |" for step, secs in metrics["timings_s"].items()]
        lines += [f"| total | {sum(metrics['timings_s'].values()):.1f} |", ""]
    return "\n".join(lines)


def recall_plot(metrics: dict[str, Any], path: Path) -> None:
    """recall@K curves of every system: one panel per query set (eval, held-out training questions)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(key, label) for key, label in (("eval", "eval questions"), ("train_holdout", "held-out training questions"))
              if key in metrics]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.5), dpi=120, sharey=True, squeeze=False)
    lowest = min(v[f"recall@{k}"] for key, _ in panels for v in metrics[key]["systems"].values() for k in CUTOFFS)
    colors: dict[str, Any] = {}
    for ax, (key, label) in zip(axes[0], panels):
        for name, values in metrics[key]["systems"].items():
            line = ax.plot(CUTOFFS, [values[f"recall@{k}"] for k in CUTOFFS], marker="o", markersize=4,
                           color=colors.get(name), label=name)
            colors[name] = line[0].get_color()  # the same colour for a system in every panel
        ax.set_xscale("log")
        ax.set_xticks(CUTOFFS, [str(k) for k in CUTOFFS])
        ax.set_ylim(max(0.0, lowest - 0.05), 1)  # the curves differ near the top: do not waste the axis
        ax.set_xlabel("K")
        ax.set_title(f"{label} ({metrics[key]['num_queries']:,})")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    axes[0][0].set_ylabel("recall@K")
    fig.suptitle(f"recall@K, pool of {metrics['eval']['pool_size']:,} answers")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
