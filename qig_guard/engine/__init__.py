"""The linter engine (placeholder docstring, written in the next commit)."""
