"""The build of a servable policy: the named stages every version passes once (load, check, model, compile, cross-check, outcome completeness)."""
