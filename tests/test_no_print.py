"""Library code logs; only the command line prints. A program that embeds endofm silences or
redirects every message through the ``endofm`` logger, which a ``print`` would bypass."""

import ast
from pathlib import Path

import endofm

SRC = Path(endofm.__file__).parent
LIBRARY_MODULES = sorted(p for p in SRC.rglob("*.py") if p.relative_to(SRC).parts[0] != "cli")


def print_calls(source: str) -> list[int]:
    """Line numbers of the calls to the built-in ``print`` (``print(...)``,
    ``builtins.print(...)``) in ``source``."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (isinstance(func, ast.Name) and func.id == "print") or (
                isinstance(func, ast.Attribute) and func.attr == "print"
                and isinstance(func.value, ast.Name) and func.value.id == "builtins"):
            lines.append(node.lineno)
    return lines


def test_the_check_finds_prints() -> None:
    source = ("import builtins\nprint('a')\n\ndef f():\n    builtins.print('b', file=x)\n"
              "logger.info('print(c)')\npprint.pprint(d)\n")
    assert print_calls(source) == [2, 5]


def test_the_library_is_walked() -> None:
    names = {p.relative_to(SRC).as_posix() for p in LIBRARY_MODULES}
    assert {"tasks/engine.py", "ssl/trainer.py", "utils/progress.py"} <= names
    assert not any(name.startswith("cli/") for name in names)


def test_no_print_outside_cli() -> None:
    found = {p.relative_to(SRC).as_posix(): lines for p in LIBRARY_MODULES
             if (lines := print_calls(p.read_text(encoding="utf-8")))}
    assert not found, f"print outside cli/ (log through logging.getLogger(__name__)): {found}"
