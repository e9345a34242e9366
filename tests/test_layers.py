"""Dependencies run one way: each subpackage imports only the layers below it
(the table in docs/architecture.md)."""

import ast
from pathlib import Path

import pytest

import endofm

SRC = Path(endofm.__file__).parent

# package (or top-level module) → the endofm packages it may import besides itself
ALLOWED = {
    "utils": set(),
    "config": {"utils"},
    "models": {"utils"},
    "data": {"utils"},
    "train": {"utils", "config", "models"},
    "runner": {"utils", "models", "data"},
    "eval": {"utils", "config", "models", "data", "runner"},
    "ssl": {"utils", "config", "models", "data", "train", "eval", "runner"},
    "tasks": {"utils", "config", "models", "data", "train", "eval", "runner"},
    "inference": {"utils", "config", "models", "data", "tasks", "runner"},
    "deploy": {"utils", "config", "models", "data", "tasks", "inference", "runner"},
    "cli": {"utils", "config", "models", "data", "train", "eval", "ssl", "tasks", "inference",
            "deploy", "runner"},
}


def endofm_imports(path: Path) -> set[str]:
    """The ``endofm.<part>`` names imported anywhere in a module (lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: relative import; use endofm.<package>")
        found |= {n.split(".")[1] for n in names if n.startswith("endofm.")}
    return found


def test_every_part_has_a_layer():
    parts = {p.stem for p in SRC.iterdir()
             if (p.is_dir() and (p / "__init__.py").is_file()) or
             (p.suffix == ".py" and p.stem != "__init__")}
    assert parts == set(ALLOWED)


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_imports_follow_the_layers(part):
    files = sorted((SRC / part).rglob("*.py")) if (SRC / part).is_dir() else [SRC / f"{part}.py"]
    for path in files:
        bad = endofm_imports(path) - ALLOWED[part] - {part}
        assert not bad, f"{path.relative_to(SRC)} imports endofm.{sorted(bad)}"


def test_rule_catches_an_upward_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from endofm.tasks.base import Task\n")
    assert endofm_imports(module) == {"tasks"}
