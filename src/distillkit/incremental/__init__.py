"""Class-incremental learning: scenario, exemplar memory, methods, metrics, stream runner."""
