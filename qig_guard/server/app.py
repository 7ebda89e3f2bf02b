"""The language server: diagnostics, code actions and hovers over pygls.

Diagnostics are published on open and save, and after edits once the buffer
has been quiet for the debounce delay. Code actions and hovers use the
findings of the buffer's current text (checking it first when an edit is
still waiting for its debounce). Parsing and checking happen in a child
process (:mod:`qig_guard.server.worker`), so that no file can crash the
server. Positions are converted between the engine's 1-based code-point
columns and the client's position encoding.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.workspace import TextDocument
from pygls.workspace.position_codec import PositionCodec, ServerTextPosition

from qig_guard import __version__
from qig_guard.engine.findings import Edit, Finding, Fix
from qig_guard.engine.fixer import applicable
from qig_guard.server import DEBOUNCE_MS
from qig_guard.server.documents import is_python, noqa_edit, split_lines
from qig_guard.server.pages import hover_text, rule_url
from qig_guard.server.worker import Worker

NAME = "qig-guard"
DEBOUNCE_SECONDS = DEBOUNCE_MS / 1000
FIX_ALL = f"{types.CodeActionKind.SourceFixAll.value}.{NAME}"
QUICK_FIX = types.CodeActionKind.QuickFix.value
CONFIGURATION_GLOB = "**/pyproject.toml"


class Protocol(LanguageServerProtocol):
    """pygls's protocol, but a request whose parameters do not fit its method gets an
    error response (pygls logs it and drops it, which leaves the client waiting)."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException as error:
            if "method" in data and isinstance(data.get("id"), (int, str)):
                self._send_response(data["id"], error=error.to_response_error())
            raise


@dataclass
class Checked:
    """A buffer's text as last checked, its findings, and which fixes re-parse."""

    text: str
    path: Path
    python: bool
    findings: list[Finding]
    parses: dict[Fix, bool] = field(default_factory=dict)


class Session:
    """The server's state: the open buffers' findings and their pending checks."""

    def __init__(self, server: LanguageServer, debounce: float, worker: Worker) -> None:
        self.server = server
        self.debounce = debounce
        self.worker = worker
        self.checked: dict[str, Checked] = {}
        self.timers: dict[str, asyncio.TimerHandle] = {}

    def _cancel(self, uri: str) -> None:
        timer = self.timers.pop(uri, None)
        if timer is not None:
            timer.cancel()

    def refresh(self, uri: str) -> Checked | None:
        """Check the buffer now and publish its diagnostics (open files only)."""
        self._cancel(uri)
        document = self.server.workspace.text_documents.get(uri)
        if document is None or document.path is None:
            return None
        path = Path(document.path)
        text = document.source
        # Python by its suffix, or by the editor's word (a script without one, say).
        python = is_python(path) or document.language_id == "python"
        checked = Checked(text, path, python, self.worker.check(uri, path, text, python))
        self.checked[uri] = checked
        lines = split_lines(text)
        codec = document.position_codec
        self.server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(
                uri=uri,
                version=document.version,
                diagnostics=[diagnostic(f, lines, codec) for f in checked.findings],
            )
        )
        return checked

    def schedule(self, uri: str) -> None:
        """Check the buffer once it has been quiet for the debounce delay."""
        self._cancel(uri)
        loop = asyncio.get_running_loop()
        self.timers[uri] = loop.call_later(self.debounce, self.refresh, uri)

    def close(self, uri: str) -> None:
        self._cancel(uri)
        self.checked.pop(uri, None)
        self.worker.forget(uri)
        self.server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )

    def current(self, uri: str) -> tuple[TextDocument, Checked] | None:
        """The buffer and the findings of its current text (None: not an open file)."""
        document = self.server.workspace.text_documents.get(uri)
        if document is None:
            return None
        checked = self.checked.get(uri)
        if checked is None or checked.text != document.source:
            checked = self.refresh(uri)
        return None if checked is None else (document, checked)

    def refresh_all(self) -> None:
        for uri in list(self.checked):
            self.refresh(uri)


def position(lines: list[str], codec: PositionCodec, line: int, column: int) -> types.Position:
    """The client position of a 1-based line and code-point column."""
    return codec.position_to_client_units(lines, ServerTextPosition(line - 1, column - 1))


def finding_range(finding: Finding, lines: list[str], codec: PositionCodec) -> types.Range:
    """The flagged node's range; a finding without an end runs to the end of its line."""
    if finding.end_line is not None and finding.end_column is not None:
        end_line, end_column = finding.end_line, finding.end_column
    else:
        end_line = finding.line
        end_column = len(lines[finding.line - 1]) + 1 if finding.line <= len(lines) else 1
    return types.Range(
        start=position(lines, codec, finding.line, finding.column),
        end=position(lines, codec, end_line, end_column),
    )


def diagnostic(finding: Finding, lines: list[str], codec: PositionCodec) -> types.Diagnostic:
    url = rule_url(finding.code)
    return types.Diagnostic(
        range=finding_range(finding, lines, codec),
        message=finding.message,
        severity=types.DiagnosticSeverity.Error,
        code=finding.code,
        code_description=types.CodeDescription(href=url) if url else None,
        source=NAME,
    )


def text_edit(edit: Edit, lines: list[str], codec: PositionCodec) -> types.TextEdit:
    return types.TextEdit(
        range=types.Range(
            start=position(lines, codec, edit.line, edit.column),
            end=position(lines, codec, edit.end_line, edit.end_column),
        ),
        new_text=edit.content,
    )


def _server_point(lines: list[str], codec: PositionCodec, point: types.Position) -> tuple[int, int]:
    """A client position as a 1-based line and code-point column."""
    converted = codec.position_from_client_units(lines, point)
    return converted.line + 1, converted.character + 1


def _span(finding: Finding, lines: list[str]) -> tuple[tuple[int, int], tuple[int, int]]:
    if finding.end_line is not None and finding.end_column is not None:
        return (finding.line, finding.column), (finding.end_line, finding.end_column)
    width = len(lines[finding.line - 1]) if finding.line <= len(lines) else 0
    return (finding.line, 1), (finding.line, width + 1)


def _overlapping(
    findings: list[Finding], lines: list[str], start: tuple[int, int], end: tuple[int, int]
) -> list[Finding]:
    """Findings whose span meets the range ``start``-``end`` (both inclusive)."""
    chosen = []
    for finding in findings:
        first, last = _span(finding, lines)
        if first <= end and start <= last:
            chosen.append(finding)
    return chosen


def _wanted(kind: str, only: list[str] | None) -> bool:
    """Whether the client asked for actions of ``kind`` (``only`` lists kind prefixes)."""
    return only is None or any(kind == prefix or kind.startswith(f"{prefix}.") for prefix in only)


def code_actions(
    session: Session, params: types.CodeActionParams
) -> list[types.CodeAction | types.Command] | None:
    uri = params.text_document.uri
    current = session.current(uri)
    if current is None:
        return None
    document, checked = current
    if not checked.python:
        return None
    lines = split_lines(checked.text)
    codec = document.position_codec
    only = [str(kind) for kind in params.context.only] if params.context.only else None
    actions: list[types.CodeAction | types.Command] = []
    if _wanted(QUICK_FIX, only):
        start = _server_point(lines, codec, params.range.start)
        end = _server_point(lines, codec, params.range.end)
        for finding in _overlapping(checked.findings, lines, start, end):
            actions.extend(_quick_fixes(session, uri, finding, checked, lines, codec))
    if only is not None and _wanted(FIX_ALL, only):  # asked for by kind (on save, say)
        action = _fix_all_action(uri)
        if resolve_fix_all(session, action).edit is not None:
            actions.append(action)
    elif only is None and any(applicable(f, unsafe=False) for f in checked.findings):
        # Offered with every request (the cursor moving); its edit re-checks the
        # file, so it is computed when the client resolves the action.
        actions.append(_fix_all_action(uri))
    return actions


def _fix_all_action(uri: str) -> types.CodeAction:
    return types.CodeAction(
        title=f"{NAME}: fix all safely fixable findings", kind=FIX_ALL, data={"uri": uri}
    )


def resolve_fix_all(session: Session, action: types.CodeAction) -> types.CodeAction:
    """Fill in the fix-all action's edit: every safe fix, as ``check --fix`` applies them."""
    uri = action.data.get("uri") if isinstance(action.data, dict) else None
    if action.kind != FIX_ALL or not isinstance(uri, str):
        return action
    current = session.current(uri)
    if current is None:
        return action
    document, checked = current
    fixed = session.worker.fix_all(checked.path, checked.text, checked.findings)
    if fixed is not None:
        lines = split_lines(checked.text)
        whole = types.Range(
            start=types.Position(line=0, character=0),
            end=position(lines, document.position_codec, len(lines), len(lines[-1]) + 1),
        )
        action.edit = _workspace_edit(uri, [types.TextEdit(range=whole, new_text=fixed)])
    return action


def _workspace_edit(uri: str, edits: list[types.TextEdit]) -> types.WorkspaceEdit:
    return types.WorkspaceEdit(changes={uri: edits})


def _quick_fixes(
    session: Session,
    uri: str,
    finding: Finding,
    checked: Checked,
    lines: list[str],
    codec: PositionCodec,
) -> list[types.CodeAction]:
    """The finding's own fix (labelled when unsafe) and its ``# noqa`` suppression."""
    actions = []
    fixes = [diagnostic(finding, lines, codec)]
    fix = finding.fix
    if fix is not None:
        if fix not in checked.parses:
            checked.parses[fix] = session.worker.fix_parses(uri, checked.text, fix)
        if checked.parses[fix]:
            label = "" if applicable(finding, unsafe=False) else " (unsafe fix)"
            actions.append(
                types.CodeAction(
                    title=f"{finding.code}: {fix.description}{label}",
                    kind=QUICK_FIX,
                    diagnostics=fixes,
                    is_preferred=fix.safe,
                    edit=_workspace_edit(uri, [text_edit(e, lines, codec) for e in fix.edits]),
                )
            )
    suppress = noqa_edit(checked.text, finding)
    if suppress is not None:
        actions.append(
            types.CodeAction(
                title=f"{finding.code}: add `# noqa: {finding.code}` to this line",
                kind=QUICK_FIX,
                diagnostics=fixes,
                edit=_workspace_edit(uri, [text_edit(suppress, lines, codec)]),
            )
        )
    return actions


def hover(session: Session, params: types.HoverParams) -> types.Hover | None:
    current = session.current(params.text_document.uri)
    if current is None:
        return None
    document, checked = current
    lines = split_lines(checked.text)
    codec = document.position_codec
    point = _server_point(lines, codec, params.position)
    pages = []
    for finding in _overlapping(checked.findings, lines, point, point):
        text = hover_text(finding.code)
        if text is not None and text not in pages:
            pages.append(text)
    if not pages:
        return None
    return types.Hover(
        contents=types.MarkupContent(
            kind=types.MarkupKind.Markdown, value="\n\n---\n\n".join(pages)
        )
    )


def create_server(debounce: float = DEBOUNCE_SECONDS, *, use_cache: bool = True) -> LanguageServer:
    """A qig-guard language server, ready for ``start_io()``."""
    server = LanguageServer(NAME, __version__, protocol_cls=Protocol)
    worker = Worker(use_cache=use_cache)
    session = Session(server, debounce, worker)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: types.DidOpenTextDocumentParams) -> None:
        session.refresh(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: types.DidChangeTextDocumentParams) -> None:
        session.schedule(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(params: types.DidSaveTextDocumentParams) -> None:
        if params.text_document.uri.endswith("/pyproject.toml"):
            session.refresh_all()  # the configuration may have changed
        elif params.text_document.uri in session.checked:
            session.refresh(params.text_document.uri)

    @server.feature(types.INITIALIZED)
    def initialized(params: types.InitializedParams) -> None:
        worker.start()  # it imports libcst and the rules while the editor opens files
        capabilities = server.client_capabilities.workspace
        watching = capabilities and capabilities.did_change_watched_files
        if watching and watching.dynamic_registration:
            server.client_register_capability(
                types.RegistrationParams(
                    [
                        types.Registration(
                            id=f"{NAME}-configuration",
                            method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                            register_options=types.DidChangeWatchedFilesRegistrationOptions(
                                [types.FileSystemWatcher(glob_pattern=CONFIGURATION_GLOB)]
                            ),
                        )
                    ]
                )
            )

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(params: types.DidChangeWatchedFilesParams) -> None:
        if any(change.uri.endswith("/pyproject.toml") for change in params.changes):
            session.refresh_all()  # a configuration changed outside the editor

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: types.DidCloseTextDocumentParams) -> None:
        session.close(params.text_document.uri)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[QUICK_FIX, FIX_ALL], resolve_provider=True),
    )
    def code_action(
        params: types.CodeActionParams,
    ) -> list[types.CodeAction | types.Command] | None:
        return code_actions(session, params)

    @server.feature(types.CODE_ACTION_RESOLVE)
    def code_action_resolve(params: types.CodeAction) -> types.CodeAction:
        return resolve_fix_all(session, params)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def on_hover(params: types.HoverParams) -> types.Hover | None:
        return hover(session, params)

    return server


def serve(debounce: float = DEBOUNCE_SECONDS) -> None:
    """Run the server over stdin and stdout until the client says exit."""
    create_server(debounce).start_io()
