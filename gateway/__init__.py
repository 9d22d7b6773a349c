"""Public entry point: question -> retrieval -> ranking -> recommended answers, with graceful degradation."""
