"""Words of the basin vocabulary that every rule and the project index share."""

from __future__ import annotations

from qig_guard.facts.words import words

# Words that make a basin-ish identifier name something about a basin, not the vector.
# fmt: off
NOT_A_VECTOR = frozenset({
    "path", "file", "filename", "fname", "dir", "url", "name", "names", "id", "ids", "idx",
    "index", "indices", "key", "keys", "dim", "dims", "size", "shape", "len", "length", "count",
    "num", "n", "distance", "distances", "dist", "dists", "loss", "losses", "error", "score",
    "scores", "similarity", "sim", "weight", "weights", "lr", "step", "steps", "config", "cfg",
    "json", "str", "text", "msg", "log", "label", "labels", "vocab", "vocabulary", "token",
    "tokens", "hash", "checksum", "version", "type", "dtype", "device", "mask", "stats", "info",
    "metrics", "meta", "metadata", "data", "norm", "radius", "threshold", "tol", "eps", "fn",
    "func", "module", "layer", "proj", "optimizer", "optim", "scheduler", "dataset", "loader",
    "plot", "fig", "ax", "save", "set", "update", "sync", "validate", "check",
    "compare", "print", "writer", "reader", "string", "strings", "word", "words", "counts",
    "freq", "frequency", "frequencies",
})
# fmt: on


def names_a_basin(identifier: str) -> bool:
    """True for an identifier naming a basin vector (``target_basin``, ``load_basin``),
    not something about one (``basin_path``, ``basin_distance``, ``save_basin``)."""
    identifier_words = words(identifier)
    return "basin" in identifier_words and not NOT_A_VECTOR.intersection(identifier_words)
