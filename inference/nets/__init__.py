"""Neural network modules the add-on runs (torch; imported only by the inference worker and training)."""
