"""The fields ``qig-guard basin convert --set`` can supply to a legacy basin file."""

SUPPLIABLE = ("source_model", "timestamp", "provenance.extracted_from", "physics_constants.<name>")
ALIASES = {"extracted_from": "provenance.extracted_from"}
"""Short names ``--set`` also accepts, and the dotted field each stands for."""
