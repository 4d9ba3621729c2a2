"""Stage 1, policy text to a valid Policy: safe YAML with positions, schema and semantic checks, the bundle, the typed model, and the semantic diff of two documents."""
