"""The book's benchmark scripts; each runs from the repository root as ``python -m benchmarks.<name>``."""
