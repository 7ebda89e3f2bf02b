"""Facts about values and code that the rules query."""
