"""The HTTP service: Starlette on uvicorn, its supervisor, hot reload and the decision log."""
