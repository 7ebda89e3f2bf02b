"""pytest plugin for qig-guard (registered through the pytest11 entry point)."""
