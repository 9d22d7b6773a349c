"""Shared by every component: wire schemas, the artifact manifest, logging setup; and the serving
parts both model services use (micro-batcher, hot-reload slot, admin endpoint). No TF/FAISS here."""
