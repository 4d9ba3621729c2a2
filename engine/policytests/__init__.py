"""The policy team's YAML test cases: the files, the runner, and the HTTP client that runs them against a live service."""
