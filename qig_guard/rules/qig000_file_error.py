"""QIG000: the engine's own findings about files it could not check."""

from __future__ import annotations

from qig_guard.engine.findings import FILE_ERROR
from qig_guard.rules.base import Invalid, Rule


class FileError(Rule):
    """
    ## What it does
    Reports a file that qig-guard could not check: it does not parse, is not
    valid in its declared encoding (PEP 263; UTF-8 by default), is larger than
    `max-file-size`, is not a regular file (a FIFO, a device), nests deeper than
    the parser can handle (the message gives the depth or CPython's reason),
    crashed or timed out the worker process that checked it, or made a rule
    crash (an internal error, reported with the rule's code; the other rules'
    findings for the file are kept). Under `strict-noqa` it also reports a bare
    `# noqa` that suppresses a finding.

    ## Why is this bad
    A file that is silently skipped is a file whose violations go unseen. The
    run goes on with the other files and exits 1, so CI still notices.

    To stay fast, qig-guard parses only files in which some selected rule
    could fire (see each rule's gate), so a syntax error in a file
    that no rule would look at is not reported; select `QIG000` alone to
    parse every file.

    ## Example
    ```python
    def extract_basin(model:
        return model.basin
    ```

    ## Use instead
    Fix the syntax or the encoding, split deeply nested generated expressions,
    raise `max-file-size` for generated files that must be checked, or exclude
    them with `exclude`.
    """

    code = FILE_ERROR
    name = "file-error"
    summary = "the file could not be checked (syntax, encoding, size, internal error)"
    INVALID = (
        Invalid("def extract_basin(model:\n    return model.basin\n", line=1, column=18),
        Invalid("basin = [0.1, 0.2\n", line=1, column=9),
    )
    VALID = ("basin = [0.1, 0.2]\n",)
