"""The design's boundaries, checked: the domain knows nothing of Slack or templates."""

from __future__ import annotations

import ast

from tests.conftest import REPO

FORBIDDEN_IN_DOMAIN = ("slack_bolt", "slack_sdk", "jinja2", "bot", "handlers")


def imported_modules(path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    return {name.split(".")[0] for name in names}


def test_scorecard_never_imports_slack_templates_or_the_layers_above_it():
    for path in sorted((REPO / "scorecard").glob("*.py")):
        assert not imported_modules(path) & set(FORBIDDEN_IN_DOMAIN), path.name


def test_every_template_is_used_or_shared():
    used = {p.stem.removesuffix(".txt") for p in (REPO / "templates").glob("*.j2") if not p.name.startswith("_")}
    code = "\n".join(p.read_text() for folder in ("bot", "handlers") for p in (REPO / folder).glob("*.py"))
    for name in used:
        assert f'"{name}' in code, f"templates/{name}.j2 is never rendered"
