"""Stage 1: encode a question with the dense Keras encoder and search the FAISS answer index."""
