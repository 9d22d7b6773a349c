"""Training job: data loading, models, training, evaluation and export."""
