"""Demo data: deterministic generators of source databases for trying imports without a real system."""
