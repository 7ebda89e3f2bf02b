"""Basin facts every rule and the project index share: the words of the basin
vocabulary, and the provenance keys the basin file format requires."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from qig_guard.facts.words import matches_any, words

if TYPE_CHECKING:
    from qig_guard.config import Config

# Words that make a basin-ish identifier name something about a basin, not the vector.
# fmt: off
NOT_A_VECTOR = frozenset({
    "path", "paths", "file", "filename", "fname", "dir", "url", "name", "names", "id", "ids", "idx",
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

DISTANCE_WORDS = frozenset({"distance", "dist"})
"""Words of a function name that measures a distance (``fisher_distance``, ``_dist``)."""
COMPARISON_WORDS = DISTANCE_WORDS | {"proximity", "similarity"}
"""Words of a function name that compares two vectors: a distance, or a similarity
(``basin_similarity(a, b)``)."""

# Words that make the end of an interpolation toward a basin the moving basin's own
# target, history or input rather than another model's basin (QIG009).
# fmt: off
OWN_BASIN_WORDS = frozenset({
    "target", "targets", "identity", "anchor", "home", "goal", "ideal", "desired", "attractor",
    "reference", "ref", "prev", "previous", "last", "old", "past", "history", "initial", "init",
    "original", "origin", "saved", "frozen", "snapshot", "checkpoint", "ckpt", "best", "ema",
    "mean", "avg", "average", "running", "baseline", "center", "centre", "centroid", "uniform",
    "noise", "random", "input", "response", "output", "message", "query", "token", "memory",
    "stored", "dream", "trajectory", "next", "predicted", "projected", "perception", "own",
    "observation", "observations", "sample", "samples", "example", "examples", "data",
    "word", "words", "concept", "doc", "document", "item", "node", "pattern", "candidate",
    "context", "topic", "task", "domain", "cluster",
})
# Words that name another model's basin (`remote_basin`, `teacher.basin`).
OTHER_MODEL_WORDS = frozenset({
    "other", "others", "remote", "donor", "peer", "peers", "partner", "source", "src", "teacher",
    "parent", "sibling", "siblings", "sister", "twin", "foreign", "external", "incoming",
    "received", "shared", "consensus", "collective", "constellation", "leader", "master",
    "primary", "victim", "ocean",
})
# fmt: on


def names_a_basin(identifier: str) -> bool:
    """True for an identifier naming a basin vector (``target_basin``, ``load_basin``),
    not something about one (``basin_path``, ``basin_distance``, ``save_basin``)."""
    identifier_words = words(identifier)
    return "basin" in identifier_words and not NOT_A_VECTOR.intersection(identifier_words)


def basin_attribute(attribute: str, config: Config) -> bool:
    """A basin-named attribute (``reference_basin``, ``identity_attractor``, or one the
    configured basin names match) that names the vector, not something about it
    (``basin_path``) nor a basin's owner (``basin_matcher``)."""
    identifier_words = words(attribute)
    if NOT_A_VECTOR.intersection(identifier_words) or matches_any(attribute, config.basin_owners):
        return False
    return "attractor" in identifier_words or matches_any(attribute, config.basin_names)


@cache
def provenance_keys() -> tuple[str, ...]:
    """The keys that say where a basin came from (``source_model``, ``timestamp``), read
    from the basin file schema: its required top-level strings."""
    # imported here: reading the schema costs a file read, and most checks never need it
    from qig_guard.basin.schema import schema

    document = schema()
    properties = document["properties"]
    return tuple(key for key in document["required"] if properties[key].get("type") == "string")
