"""Facts the rules query about the project, beyond the file being checked.

:mod:`qig_guard.facts.project` indexes every file of a run with the stdlib
``ast`` (classes, the basin attributes they write, their setters and the
classes held in attributes), so a rule can ask what the rest of the project
defines instead of guessing from one file's identifiers.
"""
