"""Developer tools (OneBot v11 simulator, helpers for benchmarks and end-to-end tests)."""
