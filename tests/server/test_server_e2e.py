"""`qig-guard server` end to end: a real process driven with raw JSON-RPC over its pipes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rule_cases import MATCHER_MODULE

pytest.importorskip("pygls", reason="the language server needs qig-guard[server]")

from lsp_client import LspClient, apply_text_edits

from qig_guard.basin import save_basin

VIOLATION = "def retarget(model, b):\n    model.basin_matcher.target_basin = b\n"
FIXED = "def retarget(model, b):\n    model.basin_matcher.set_target_basin(b)\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    (root / "pyproject.toml").write_text('[tool.qig-guard]\nexclude = ["generated/**"]\n')
    (root / "matcher.py").write_text(MATCHER_MODULE)  # makes the QIG002 fix safe
    return root


@pytest.fixture(scope="module")
def client(project: Path) -> Iterator[LspClient]:
    # A long debounce, so that a burst of edits is reliably one check even on a busy machine.
    lsp = LspClient(project, ["--debounce-ms", "300"])
    try:
        lsp.initialize(project)
        yield lsp
    finally:
        if lsp.process.poll() is None:
            lsp.process.kill()
            lsp.process.wait()


def _open(client: LspClient, path: Path, text: str, language: str = "python") -> dict[str, Any]:
    uri = path.as_uri()
    client.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": language, "version": 1, "text": text}},
    )
    return client.diagnostics(uri, version=1)


def _change(client: LspClient, uri: str, version: int, text: str) -> None:
    client.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]},
    )


def _code_actions(
    client: LspClient, uri: str, range_: dict[str, Any], only: list[str] | None = None
) -> list[dict[str, Any]]:
    context: dict[str, Any] = {"diagnostics": []}
    if only is not None:
        context["only"] = only
    response = client.request(
        "textDocument/codeAction",
        {"textDocument": {"uri": uri}, "range": range_, "context": context},
    )
    assert "error" not in response, response
    return list(response["result"] or [])


def _edits(action: dict[str, Any], uri: str) -> list[dict[str, Any]]:
    return list(action["edit"]["changes"][uri])


def test_initialize_announces_the_features(client: LspClient) -> None:
    response = client.initialized
    capabilities = response["result"]["capabilities"]
    assert response["result"]["serverInfo"]["name"] == "qig-guard"
    assert capabilities["textDocumentSync"]["openClose"] is True
    assert capabilities["textDocumentSync"]["save"]
    assert capabilities["hoverProvider"] is True
    assert capabilities["codeActionProvider"]["resolveProvider"] is True
    assert set(capabilities["codeActionProvider"]["codeActionKinds"]) == {
        "quickfix",
        "source.fixAll.qig-guard",
    }


def test_qig002_diagnostic_fix_noqa_hover_and_clearing(client: LspClient, project: Path) -> None:
    path = project / "train.py"
    uri = path.as_uri()
    published = _open(client, path, VIOLATION)
    (diagnostic,) = published["diagnostics"]
    assert diagnostic["code"] == "QIG002"
    assert diagnostic["severity"] == 1
    assert diagnostic["source"] == "qig-guard"
    assert diagnostic["codeDescription"]["href"].endswith(
        "docs/rules.md#qig002-direct-basin-assignment"
    )
    # The flagged node, `model.basin_matcher.target_basin = b`, in 0-based LSP positions.
    assert diagnostic["range"] == {
        "start": {"line": 1, "character": 4},
        "end": {"line": 1, "character": 40},
    }

    actions = _code_actions(client, uri, diagnostic["range"])
    fix = next(a for a in actions if "set_target_basin" in a["title"])
    assert fix["kind"] == "quickfix" and fix["isPreferred"] is True
    assert "unsafe" not in fix["title"]
    assert fix["diagnostics"][0]["code"] == "QIG002"
    assert apply_text_edits(VIOLATION, _edits(fix, uri)) == FIXED

    noqa = next(a for a in actions if "noqa" in a["title"])
    suppressed = apply_text_edits(VIOLATION, _edits(noqa, uri))
    assert suppressed.splitlines()[1] == "    model.basin_matcher.target_basin = b  # noqa: QIG002"

    hover = client.request(
        "textDocument/hover",
        {"textDocument": {"uri": uri}, "position": {"line": 1, "character": 12}},
    )["result"]
    assert hover["contents"]["kind"] == "markdown"
    text = hover["contents"]["value"]
    assert text.startswith("**QIG002 direct-basin-assignment**")
    for section in ("What it does", "Why is this bad", "Use instead"):
        assert f"**{section}**" in text
    assert "set_target_basin(new_basin)" in text
    outside = client.request(
        "textDocument/hover",
        {"textDocument": {"uri": uri}, "position": {"line": 0, "character": 2}},
    )
    assert outside["result"] is None

    # The noqa edit applied in the buffer suppresses the finding, as `check` does.
    _change(client, uri, 2, suppressed)
    assert client.diagnostics(uri, version=2)["diagnostics"] == []
    _change(client, uri, 3, VIOLATION)
    assert [d["code"] for d in client.diagnostics(uri, version=3)["diagnostics"]] == ["QIG002"]
    # A burst of edits is checked once, for the last one (debounce); its fix clears it.
    _change(client, uri, 4, VIOLATION + "\n")
    _change(client, uri, 5, VIOLATION + "\n\n")
    _change(client, uri, 6, FIXED)
    assert client.diagnostics(uri, version=6)["diagnostics"] == []
    versions = [
        n["params"]["version"]
        for n in client.notifications
        if n.get("method") == "textDocument/publishDiagnostics" and n["params"]["uri"] == uri
    ]
    assert 4 not in versions and 5 not in versions


def test_configuration_changes_recheck_open_files(client: LspClient, project: Path) -> None:
    path = project / "ignored_later.py"
    uri = path.as_uri()
    assert [d["code"] for d in _open(client, path, VIOLATION)["diagnostics"]] == ["QIG002"]
    pyproject = project / "pyproject.toml"
    before = pyproject.read_text()
    try:
        pyproject.write_text(before + 'per-file-ignores = { "ignored_later.py" = ["QIG002"] }\n')
        client.notify(
            "workspace/didChangeWatchedFiles",
            {"changes": [{"uri": pyproject.as_uri(), "type": 2}]},
        )
        assert client.diagnostics(uri)["diagnostics"] == []
    finally:
        pyproject.write_text(before)
        os.utime(pyproject, ns=(1, 1))  # a different mtime, however fast the file system
        client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        assert client.diagnostics(uri)["diagnostics"] == []


def test_fix_all_applies_safe_fixes_only(client: LspClient, project: Path) -> None:
    path = project / "sync.py"
    uri = path.as_uri()
    text = (
        "def sync(model, gary, basin):\n"
        "    model.basin_matcher.target_basin = basin\n"  # safe fix
        "    gary.target_basin = basin\n"  # unsafe fix: gary may not define the setter
    )
    published = _open(client, path, text)
    assert [d["code"] for d in published["diagnostics"]] == ["QIG002", "QIG002"]
    unsafe = _code_actions(client, uri, published["diagnostics"][1]["range"], ["quickfix"])
    assert any("(unsafe fix)" in action["title"] for action in unsafe)
    everything = {"start": {"line": 0, "character": 0}, "end": {"line": 3, "character": 0}}
    assert _code_actions(client, uri, everything, ["quickfix"])  # quick fixes only
    assert all(
        a["kind"] == "quickfix" for a in _code_actions(client, uri, everything, ["quickfix"])
    )
    (fix_all,) = _code_actions(client, uri, everything, ["source.fixAll"])
    assert fix_all["kind"] == "source.fixAll.qig-guard"
    fixed = (
        "def sync(model, gary, basin):\n"
        "    model.basin_matcher.set_target_basin(basin)\n"
        "    gary.target_basin = basin\n"
    )
    assert apply_text_edits(text, _edits(fix_all, uri)) == fixed
    # Unfiltered requests (the cursor moving) offer it unresolved: the edit comes on resolve.
    (offered,) = [a for a in _code_actions(client, uri, everything) if a["kind"] != "quickfix"]
    assert offered["kind"] == "source.fixAll.qig-guard" and "edit" not in offered
    resolved = client.request("codeAction/resolve", offered)["result"]
    assert apply_text_edits(text, _edits(resolved, uri)) == fixed


def test_basin_json_with_nan_gets_qig102(client: LspClient, project: Path, tmp_path: Path) -> None:
    valid = save_basin(
        tmp_path / "gary.basin.json",
        [round(0.01 * i - 0.3, 2) for i in range(64)],
        source_model="Gary-A",
        extracted_from="ckpt.pt",
    ).read_text()
    assert "-0.29," in valid
    path = project / "basins" / "gary.basin.json"
    published = _open(client, path, valid.replace("-0.29,", "NaN,", 1), language="json")
    codes = [d["code"] for d in published["diagnostics"]]
    assert codes == ["QIG102"]
    (nan,) = published["diagnostics"]
    assert "NaN" in valid.replace("-0.29,", "NaN,", 1).splitlines()[nan["range"]["start"]["line"]]
    assert nan["codeDescription"]["href"].endswith("docs/rules.md#qig102-basin-non-finite")
    # JSON that no basin glob matches is not a basin file.
    assert _open(client, project / "settings.json", "{", language="json")["diagnostics"] == []


def test_unparsable_and_excluded_files(client: LspClient, project: Path) -> None:
    broken = _open(client, project / "broken.py", "model.basin_matcher.target_basin = (\n")
    (diagnostic,) = broken["diagnostics"]
    assert diagnostic["code"] == "QIG000"
    assert "not checked" in diagnostic["message"]
    # Nesting that kills libcst's native parser (a stack overflow) kills only the child.
    deep = "model.basin_matcher.target_basin = " + "(" * 3000 + "b" + ")" * 3000 + "\n"
    (crashed,) = _open(client, project / "deep.py", deep)["diagnostics"]
    assert crashed["code"] == "QIG000"
    assert "not checked" in crashed["message"] or "too deeply" in crashed["message"]
    assert [d["code"] for d in _open(client, project / "next.py", VIOLATION)["diagnostics"]] == [
        "QIG002"
    ]
    assert _open(client, project / "generated" / "out.py", VIOLATION)["diagnostics"] == []
    # A script without a suffix is Python when the editor says so, as `check` does when named.
    script = _open(client, project / "retarget", VIOLATION)
    assert [d["code"] for d in script["diagnostics"]] == ["QIG002"]
    assert _open(client, project / "notes", VIOLATION, language="plaintext")["diagnostics"] == []


def test_malformed_messages_leave_the_server_working(client: LspClient, project: Path) -> None:
    client.send_raw(b"{this is not json")
    client.send_raw(b'{"jsonrpc": "2.0", "id": 900, "method": "textDocument/hover", "params": 5}')
    invalid = client.wait(lambda message: message.get("id") == 900)
    assert invalid["error"]["code"] == -32602  # invalid params, answered
    client.send_raw(b'{"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {}}')
    response = client.request("textDocument/nonsense", {})
    assert response["error"]["code"] == -32601  # method not found, answered
    never_opened = {"uri": (project / "nowhere.py").as_uri()}
    hover = {"textDocument": never_opened, "position": {"line": 0, "character": 0}}
    assert client.request("textDocument/hover", hover)["result"] is None
    # Still checking files.
    published = _open(client, project / "after.py", VIOLATION)
    assert [d["code"] for d in published["diagnostics"]] == ["QIG002"]


def test_watching_configuration_then_shutdown_and_exit(project: Path) -> None:
    client = LspClient(project)
    watching = {"workspace": {"didChangeWatchedFiles": {"dynamicRegistration": True}}}
    client.request("initialize", {"processId": None, "capabilities": watching})
    client.notify("initialized", {})
    register = client.wait(lambda message: message.get("method") == "client/registerCapability")
    (registration,) = register["params"]["registrations"]
    assert registration["method"] == "workspace/didChangeWatchedFiles"
    assert registration["registerOptions"]["watchers"] == [{"globPattern": "**/pyproject.toml"}]
    client.send({"id": register["id"], "result": None})
    assert client.request("shutdown")["result"] is None
    client.notify("exit")
    assert client.process.wait(timeout=30) == 0
