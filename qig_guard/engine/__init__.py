"""The linter engine: files in, :class:`~qig_guard.engine.findings.Finding` lists out.

What goes in: paths (or one buffer's bytes), a :class:`~qig_guard.config.Config`
(or a resolver giving each file its own), and the rule classes that
:mod:`qig_guard.rules` registers. What comes out: a
:class:`~qig_guard.engine.results.RunResult` whose ``findings`` are plain data, in
report order, with the files and configurations behind them. The engine knows no
rule by name except its own code, QIG000
(:data:`~qig_guard.engine.findings.FILE_ERROR`); rules know the engine only through
:class:`~qig_guard.rules.base.Rule` and its ``FileContext``.

A finding's path through the modules:

- :mod:`.runner` finds the files (:mod:`.discovery`), picks each file's codes
  (:mod:`.selection`), reuses cached results (:mod:`.cache`), checks the rest in
  worker processes (:mod:`.isolation`) and orders what it returns;
- :mod:`.checker` checks one file's bytes: decode (:mod:`.source`), gate rules by
  their cheap trigger, parse (:mod:`.parsing`), run every rule in one
  :mod:`.traversal` after the scope tracker (:mod:`.resolve`), then drop what
  ``# noqa`` suppresses (:mod:`.noqa`);
- rules place findings with :mod:`.positions`; :mod:`.fixer` and
  :mod:`.apply_fixes` apply their fixes; :mod:`.baseline` hides known findings;
  :mod:`.report` renders text, JSON, SARIF and GitHub annotations;
  :mod:`.rule_catalog` says what each rule is for the CLI and the docs, and
  :mod:`.docs` regenerates ``docs/rules.md`` from it.
"""
