"""Facts the rules query about values and the project, beyond the file being checked.

- :mod:`~qig_guard.facts.project` indexes every file of a run with the stdlib ``ast``
  (classes, their setters, the classes and kinds of value held in attributes, the
  functions that return a stored basin), so a rule can ask what the rest of the project
  defines instead of guessing from one file's identifiers;
- :mod:`~qig_guard.facts.kinds` says what kind of value an expression makes (a torch
  tensor, a NumPy array, a list...);
- :mod:`~qig_guard.facts.torch_api` holds the torch and NumPy API lists several rules
  ask (value- and gradient-keeping methods, no-grad contexts, optimizer words, pickle
  modules, random sources, data loaders);
- :mod:`~qig_guard.facts.vocabulary` holds the basin words every rule shares, and reads
  the provenance keys from the basin file schema;
- :mod:`~qig_guard.facts.distances` knows which functions compare two basins and which
  normalise one.
"""
