"""CLI: `python -m training --train A [B ...] --eval C [D ...] --out artifacts [--epochs N]`."""

from __future__ import annotations

import argparse
import sys

from common.logs import setup_logging
from training.config import DEFAULT_DATA_DIR, TrainConfig


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    defaults = TrainConfig(train=["-"])
    default_train = DEFAULT_DATA_DIR / "train.jsonl"
    default_eval = DEFAULT_DATA_DIR / "dev.jsonl"
    p = argparse.ArgumentParser(
        prog="python -m training",
        description="Train every artifact the retrieval and ranking services load, evaluate, and publish a bundle.",
    )
    p.add_argument("--train", nargs="+", default=[str(default_train)] if default_train.is_file() else None,
                   help="training data: local .jsonl/.json/.parquet/.csv files or hub ids (name[:split]); "
                   f"default {default_train} when present")
    p.add_argument("--eval", nargs="*", default=[str(default_eval)] if default_eval.is_file() else [],
                   help=f"evaluation data, same forms; its questions are never trained on; default {default_eval} when present")
    p.add_argument("--out", default=str(defaults.out), help="artifacts directory (bundles + CURRENT pointer)")
    p.add_argument("--epochs", type=int, default=defaults.epochs, help="encoder fine-tuning epochs (0 = off-the-shelf)")
    p.add_argument("--finetune-mode", choices=["adapter", "question", "both"], default=defaults.finetune_mode,
                   help="adapter: linear map on question vectors (seconds); question: tune the question encoder "
                   "(minutes per epoch); both: both towers, in-batch negatives (slow on a CPU)")
    p.add_argument("--candidates", type=int, default=defaults.candidates, help="candidates per question for the reranker")
    p.add_argument("--reranker-epochs", type=int, default=defaults.reranker_epochs)
    p.add_argument("--index-factory", default=defaults.index_factory, help="FAISS index factory string")
    p.add_argument("--max-length", type=int, default=defaults.max_length, help="encoder tokens per text")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--force", action="store_true", help="retrain even if the served bundle matches data and config")
    args = p.parse_args(argv)
    if not args.train:
        p.error(f"no training data: pass --train (default {default_train} does not exist)")
    return TrainConfig(
        train=args.train, eval=args.eval, out=args.out, epochs=args.epochs, finetune_mode=args.finetune_mode,
        candidates=args.candidates,
        reranker_epochs=args.reranker_epochs, index_factory=args.index_factory, max_length=args.max_length,
        seed=args.seed, force=args.force,
    )


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    config = parse_args(argv)
    # Heavy imports (TensorFlow, FAISS) only after the arguments are known to be good.
    from training.data import DataError
    from training.train import run

    try:
        run(config)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
