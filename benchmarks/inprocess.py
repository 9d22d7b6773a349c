"""The same pipeline without HTTP (encoder -> FAISS index -> reranker), measured in its own process.

`run_inprocess()` starts `python -m benchmarks.inprocess` as a child so that TensorFlow is never
imported into the load generator, and so that the services are stopped (or idle) while it runs: it
does not compete with them for the cores. The child uses the same thread budgets as the services
(`RETRIEVAL_TF_THREADS`, `RETRIEVAL_FAISS_THREADS`, default 1) and serves one question at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.load import BenchError

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_inprocess(
    artifacts: Path,
    questions: Sequence[str],
    warmup: Sequence[str],
    *,
    k: int,
    candidates: int,
    timeout_s: float = 300.0,
) -> dict:
    """Measure the in-process pipeline over `questions` (after `warmup`) in a child process.

    Returns:
        The child's report: latencies_s, per-request stage timings, load time, peak memory, threads.

    Raises:
        BenchError: the child failed or ran out of time (with the end of its output).
    """
    with tempfile.TemporaryDirectory(prefix="bench-inprocess-") as tmp:
        spec, out = Path(tmp) / "questions.json", Path(tmp) / "result.json"
        spec.write_text(json.dumps({"questions": list(questions), "warmup": list(warmup)}))
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"), TF_CPP_MIN_LOG_LEVEL="2",
                   HF_HUB_OFFLINE="1", KERAS_BACKEND="tensorflow")
        command = [sys.executable, "-m", "benchmarks.inprocess", "--artifacts", str(artifacts), "--spec", str(spec),
                   "--out", str(out), "--k", str(k), "--candidates", str(candidates)]
        try:
            done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise BenchError(f"in-process benchmark did not finish within {timeout_s:.0f} s") from None
        if done.returncode != 0 or not out.exists():
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise BenchError(f"in-process benchmark failed (exit {done.returncode}):\n{tail}")
        return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    """Child entry point: load the bundle, warm up, time each question, write JSON to --out."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.inprocess", description=__doc__)
    p.add_argument("--artifacts", type=Path, required=True)
    p.add_argument("--spec", type=Path, required=True, help='JSON file {"questions": [...], "warmup": [...]}')
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--candidates", type=int, default=100)
    args = p.parse_args(argv)
    spec = json.loads(args.spec.read_text())

    threads = _configure_threads()
    from common import manifest as mf
    from ranking_service.ranker import Ranker
    from retrieval_service.retriever import Retriever

    started = time.perf_counter()
    bundle = mf.resolve_bundle(args.artifacts)
    retriever = Retriever.load(bundle)
    ranker = Ranker.load(bundle)
    load_s = time.perf_counter() - started
    for question in spec["warmup"]:
        _recommend(retriever, ranker, question, args.k, args.candidates)

    latencies, stages = [], []
    for question in spec["questions"]:
        sent = time.perf_counter()
        timing = _recommend(retriever, ranker, question, args.k, args.candidates)
        latencies.append(time.perf_counter() - sent)
        stages.append(timing)

    from benchmarks.procinfo import memory_mib

    args.out.write_text(json.dumps({
        "artifact_version": retriever.manifest.artifact_version,
        "load_s": round(load_s, 2),
        "threads": threads,
        "latencies_s": latencies,
        "stage_timings_ms": stages,
        "memory": memory_mib([os.getpid()]),
    }))
    return 0


def _recommend(retriever, ranker, question: str, k: int, candidates: int) -> dict[str, float]:
    """One request's work as the services do it: encode, search, rerank, top k with texts."""
    t0 = time.perf_counter()
    embedding = retriever.encode([question])  # (1, dim)
    t1 = time.perf_counter()
    _, found = retriever.search(embedding, candidates)  # (1, candidates)
    rows = [int(row) for row in found[0] if row >= 0]
    t2 = time.perf_counter()
    order, scores, _, _ = ranker.rank(question, rows, embedding[0])
    store = ranker.store
    top = [(store.ids[rows[i]], store.texts[rows[i]], float(scores[i])) for i in order[:k]]
    t3 = time.perf_counter()
    del top  # built only so the in-process run does the same work as the services
    return {"encode": 1000 * (t1 - t0), "search": 1000 * (t2 - t1), "rerank": 1000 * (t3 - t2)}


def _configure_threads() -> dict[str, int]:
    """The services' thread budgets (same settings classes, same environment variables)."""
    import tensorflow as tf

    from retrieval_service.config import RetrievalSettings
    from retrieval_service.index import set_threads

    settings = RetrievalSettings()
    tf.config.threading.set_intra_op_parallelism_threads(settings.tf_threads)
    tf.config.threading.set_inter_op_parallelism_threads(settings.tf_threads)
    set_threads(settings.faiss_threads)
    return {"tf": settings.tf_threads, "faiss": settings.faiss_threads}


if __name__ == "__main__":
    sys.exit(main())
