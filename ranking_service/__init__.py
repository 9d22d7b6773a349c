"""Stage 2: rescore retrieved candidates with a Keras reranker over cheap per-answer features."""
