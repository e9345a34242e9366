"""The configuration and command-line references of the documentation site, generated from the
code so that they cannot drift from it.

* :func:`config_reference`: every key of every command's config schema (the typed dataclasses
  :func:`endofm.config.load_config` merges), with its type, default, the range its section's
  ``__post_init__`` enforces (read off the ``endofm.utils.checks`` calls and the ``if ...: raise``
  checks there) and its meaning (the field's comment in the source).
* :func:`cli_reference`: every command and option of :func:`endofm.cli.main.build_parser`.
* :func:`api_reference`: the public names of ``endofm`` (``endofm.__all__``) and the config
  schemas, as mkdocstrings directives at the modules that define them today.

The site's build hook (``scripts/docs_hooks.py``) writes both pages when ``mkdocs build`` runs.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import io
import math
import textwrap
import tokenize
import typing
from dataclasses import dataclass
from enum import Enum
from functools import cache
from types import NoneType, UnionType
from typing import Any

import yaml

USAGE_WIDTH = 100
# Options every command accepts, listed once under ``endofm``.
SHARED_OPTIONS = frozenset({"quiet", "debug"})
CHECKS = ("require_at_least", "require_in_range", "require_interval", "require_mean_std")


@dataclass(frozen=True)
class KeyDoc:
    """One config key as the reference shows it."""

    key: str  # dotted, e.g. ``optim.lr``
    type: str
    default: str
    range: str
    meaning: str


@dataclass(frozen=True)
class Section:
    """One config dataclass: its dotted prefix, its description and its own (non-section) keys."""

    prefix: str
    doc: str
    keys: list[KeyDoc]


def config_schemas() -> dict[str, type]:
    """Each command's config schema, by the command line that takes it."""
    from endofm.eval.probe import ProbeConfig
    from endofm.ssl import PretrainConfig
    from endofm.tasks import TASKS
    from endofm.tasks.base import task_config_schema

    schemas: dict[str, type] = {"pretrain": PretrainConfig}
    for name, task in TASKS.items():
        schemas[f"finetune {name}` / `endofm evaluate {name}"] = task_config_schema(task)
    schemas["probe"] = ProbeConfig
    return schemas


def recipe_group(command: str) -> str:
    """The recipe group of a command line (``finetune classification`` → ``classification``)."""
    return command.split("`")[0].split()[-1]


def sections(schema: type, prefix: str = "", defaults: Any = None) -> list[Section]:
    """``schema`` and every section nested in it, depth first, as :class:`Section`s.
    ``defaults``: the instance the parent's field makes (its default may differ from the
    section class's own, e.g. a task's ``optim``)."""
    hints = typing.get_type_hints(schema)
    own, nested = [], []
    for f in dataclasses.fields(schema):
        key = f"{prefix}{f.name}"
        value = getattr(defaults, f.name) if defaults is not None else field_default(f)
        if dataclasses.is_dataclass(hints[f.name]):
            nested += sections(hints[f.name], f"{key}.", value)
        else:
            own.append(KeyDoc(key, type_name(hints[f.name]), yaml_value(value),
                              field_ranges(schema).get(f.name, ""),
                              field_comments(schema).get(f.name, "")))
    doc = inspect.getdoc(schema) if schema.__doc__ and not _generated_doc(schema) else ""
    return [Section(prefix.rstrip("."), doc or "", own), *nested] if own else nested


def _generated_doc(schema: type) -> bool:
    """Whether ``schema.__doc__`` is the signature :mod:`dataclasses` makes up."""
    return bool(schema.__doc__) and schema.__doc__.startswith(f"{schema.__name__}(")


def type_name(hint: Any) -> str:
    """A type as the reference writes it: ``int``, ``float or null``, ``list of int``, ``choice``
    (an enum)."""
    origin = typing.get_origin(hint)
    if origin in (UnionType, typing.Union):
        args = [a for a in typing.get_args(hint) if a is not NoneType]
        name = " or ".join(type_name(a) for a in args)
        return f"{name} or null" if len(args) < len(typing.get_args(hint)) else name
    if origin in (list, tuple):
        return f"list of {type_name(typing.get_args(hint)[0])}"
    if isinstance(hint, type) and issubclass(hint, Enum):
        return "choice"
    return getattr(hint, "__name__", str(hint))


def field_default(f: dataclasses.Field) -> Any:
    """The field's default value (a section's default: the instance its factory makes)."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def yaml_value(value: Any) -> str:
    if isinstance(value, Enum):
        value = value.value
    elif isinstance(value, list | tuple):
        value = [v.value if isinstance(v, Enum) else v for v in value]
    return yaml.safe_dump(value, default_flow_style=True, width=1000).removesuffix("\n...\n") \
        .strip()


def choices(hint: Any) -> list[str]:
    """The values of the enum in ``hint`` (``X | None`` included), else none."""
    for arg in (hint, *typing.get_args(hint)):
        if isinstance(arg, type) and issubclass(arg, Enum):
            return [member.value for member in arg]
    return []


@cache
def field_comments(schema: type) -> dict[str, str]:
    """``{field: meaning}`` from the source of ``schema`` and its bases: the comment on a field's
    line(s), after the comment lines right above it (a block ending in ``:`` heads a group of
    fields and is left out)."""
    found: dict[str, str] = {}
    for cls in reversed(schema.__mro__[:-1]):
        if dataclasses.is_dataclass(cls) and cls.__module__ != "builtins":
            found |= _class_comments(cls)
    return found


def _class_comments(cls: type) -> dict[str, str]:
    source = textwrap.dedent(inspect.getsource(cls))
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    lines = source.splitlines()
    found = {}
    for node in ast.parse(source).body[0].body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            above = _comment_block_above(lines, comments, node.lineno)
            trailing = [comments[n] for n in range(node.lineno, node.end_lineno + 1)
                        if n in comments]
            text = " ".join(above + trailing)
            if text:
                found[node.target.id] = text
    return found


def _comment_block_above(lines: list[str], comments: dict[int, str], lineno: int) -> list[str]:
    block: list[str] = []
    n = lineno - 1
    while n >= 1 and n in comments and lines[n - 1].lstrip().startswith("#"):
        block.insert(0, comments[n])
        n -= 1
    return [] if block and block[-1].endswith(":") else block


@cache
def field_ranges(schema: type) -> dict[str, str]:
    """``{field: allowed values}`` from the ``__post_init__`` of ``schema`` and its bases, and
    the choices of enum-typed fields."""
    hints = typing.get_type_hints(schema)
    found = {f.name: "one of " + ", ".join(f"`{c}`" for c in choices(hints[f.name]))
             for f in dataclasses.fields(schema) if choices(hints[f.name])}
    for cls in schema.__mro__[:-1]:
        method = cls.__dict__.get("__post_init__")
        if method is not None:
            for key, text in _checks(textwrap.dedent(inspect.getsource(method))):
                found[key] = f"{found[key]}; {text}" if key in found else text
    return found


def _checks(source: str) -> list[tuple[str, str]]:
    """``(field, allowed values)`` for each range check in a ``__post_init__``'s source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in CHECKS:
            found += _check_call(node)
        elif isinstance(node, ast.If) and _raises(node.body):
            allowed = _negate(node.test)
            found += [(name, f"`{allowed}`") for name in _self_attributes(node.test)]
    return found


def _check_call(call: ast.Call) -> list[tuple[str, str]]:
    if not (isinstance(call.args[0], ast.Name) and call.args[0].id == "self"):
        return []
    name = call.func.id  # type: ignore[attr-defined]
    if name == "require_mean_std":
        return [("mean", "3 values"), ("std", "3 values, each > 0")]
    values = [_number(a) for a in call.args[2:] if not isinstance(a, ast.Constant)
              or not isinstance(a.value, str)]
    keys = [a.value for a in call.args[2:] if isinstance(a, ast.Constant)
            and isinstance(a.value, str)]
    flags = {k.arg: _number(k.value) for k in call.keywords}
    if name == "require_at_least":
        text = f"≥ {_fmt(values[0])}"
    elif name == "require_in_range":
        text = _interval(values[0], values[1], bool(flags.get("low_open")),
                         bool(flags.get("high_open")))
    else:
        below = "<" if flags.get("low_open") else "≤"
        text = f"`[lo, hi]`, {_fmt(values[0])} {below} lo ≤ hi ≤ {_fmt(values[1])}"
    return [(key, text) for key in keys]


def _interval(low: float | str, high: float | str, low_open: bool, high_open: bool) -> str:
    if high == math.inf:
        return f"{'>' if low_open else '≥'} {_fmt(low)}"
    return f"{'(' if low_open else '['}{_fmt(low)}, {_fmt(high)}{')' if high_open else ']'}"


def _number(node: ast.expr) -> float | str:
    """A bound: a number, ``math.inf``, or another field's expression (``num_classes - 1``)."""
    if isinstance(node, ast.Attribute) and node.attr == "inf":
        return math.inf
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ast.unparse(node).replace("self.", "")


def _fmt(value: float | str) -> str:
    return value if isinstance(value, str) else f"{value:g}"


def _raises(body: list[ast.stmt]) -> bool:
    return any(isinstance(stmt, ast.Raise) for stmt in body)


def _negate(test: ast.expr) -> str:
    """The condition under which a check passes, without ``self.``."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        text = ast.unparse(test.operand)
    else:
        text = f"not ({ast.unparse(test)})"
    return text.replace("self.", "")


def _self_attributes(test: ast.expr) -> list[str]:
    return list(dict.fromkeys(n.attr for n in ast.walk(test) if isinstance(n, ast.Attribute)
                              and isinstance(n.value, ast.Name) and n.value.id == "self"))


def config_reference() -> str:
    """The configuration reference page (Markdown)."""
    from endofm.config import recipe_names

    out = [
        "# Configuration reference",
        "",
        "Every setting of every command: its key, type, default, the values it accepts and what "
        "it means. Settings are the typed defaults below, overlaid by a YAML recipe (`--config "
        "NAME` or a path) and then by `key=value` overrides (see [settings and run folders]"
        "(../guide/settings.md)). A value outside its range is an error naming the key before "
        "anything runs. Generated from the config schemas when the site is built.",
        "",
    ]
    for command, schema in config_schemas().items():
        group = recipe_group(command)
        recipes = ", ".join(f"`{n}`" for n in recipe_names(group))
        out += [f"## `endofm {command}`", "",
                f"Schema `{schema.__module__}.{schema.__name__}`; packaged recipes "
                f"(`--config NAME`, `endofm configs {group} NAME`): {recipes}.", ""]
        for section in sections(schema):
            out += _section_table(section)
    return "\n".join(out) + "\n"


def _section_table(section: Section) -> list[str]:
    out = [f"### `{section.prefix}`" if section.prefix else "### top level", ""]
    if section.doc:
        out += [section.doc, ""]
    out += ["| key | type | default | allowed | meaning |", "|---|---|---|---|---|"]
    for k in section.keys:
        out.append(f"| `{k.key}` | {k.type} | `{k.default}` | {_cell(k.range)} | "
                   f"{_cell(k.meaning)} |")
    return [*out, ""]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def cli_reference() -> str:
    """The command-line reference page (Markdown)."""
    from endofm.cli.main import build_parser

    out = ["# Command-line reference", "",
           "Every command and option of `endofm`, as `endofm COMMAND --help` prints them. "
           "Commands that take settings also accept `key=value` overrides after their options "
           "(the [configuration reference](config.md)). `--quiet` and `--debug` (listed under "
           "`endofm`) are accepted by every command, before or after its name. Generated from "
           "the argument parsers when the site is built.", ""]
    for path, parser in commands(build_parser()):
        out += _command_section(path, parser)
    return "\n".join(out) + "\n"


def commands(parser: argparse.ArgumentParser, path: str = "endofm"
             ) -> list[tuple[str, argparse.ArgumentParser]]:
    """``(command line, parser)`` of ``parser`` and of every sub-command below it."""
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += commands(child, f"{path} {name}")
    return found


def _command_section(path: str, parser: argparse.ArgumentParser) -> list[str]:
    level = "#" * min(path.count(" ") + 1, 4)
    out = [f"#{level} `{path}`", ""]
    if parser.description:
        out += [parser.description, ""]
    out += ["```text", usage(parser), "```", ""]
    shared = set() if path == "endofm" else SHARED_OPTIONS
    rows = [_option_row(parser, a) for a in parser._actions
            if not isinstance(a, argparse._HelpAction | argparse._SubParsersAction)
            and a.help is not argparse.SUPPRESS and a.dest not in shared]
    if rows:
        out += ["| option | value | default | meaning |", "|---|---|---|---|", *rows, ""]
    return out


def usage(parser: argparse.ArgumentParser) -> str:
    """The parser's usage line(s) at a fixed width (not the terminal's)."""
    formatter = argparse.HelpFormatter(parser.prog, width=USAGE_WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _option_row(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    name = ", ".join(action.option_strings) or action.dest
    if action.choices:
        value = " \\| ".join(f"`{c}`" for c in action.choices)
    elif action.nargs == 0:
        value = ""
    else:
        value = f"`{action.metavar or action.dest.upper()}`"
    if action.nargs in ("+", "*"):
        value += " …"
    default = action.default
    shown = "" if default in (None, argparse.SUPPRESS, False) or action.nargs == 0 else \
        f"`{default}`"
    help_text = parser._get_formatter()._expand_help(action) if action.help else ""
    return f"| `{name}` | {value} | {shown} | {_cell(help_text)} |"


def api_reference() -> str:
    """The Python API page (Markdown with mkdocstrings ``:::`` directives)."""
    import endofm
    from endofm.models import VisionTransformer

    out = ["# Python API", "",
           "The public names of the `endofm` package (`import endofm`; each is also importable "
           "from the module named in its heading) and the config schemas. Clips are `float32 "
           "[B, 3, T, H, W]` tensors; videos are files decoded with PyAV. Generated from the "
           "docstrings when the site is built.", "", "## `endofm`", ""]
    for name in sorted(n for n in endofm.__all__ if not n.startswith("_")):
        out += [f"::: {qualified_name(getattr(endofm, name))}", ""]
    out += ["## The backbone", "", f"::: {qualified_name(VisionTransformer)}", "    options:",
            "      members: [forward, forward_features, get_intermediate_layers, "
            "get_last_selfattention]", "", "## Config schemas", "",
            "Every key of these is listed in the [configuration reference](config.md).", ""]
    for schema in dict.fromkeys(config_schemas().values()):
        out += [f"::: {qualified_name(schema)}", "    options:", "      members: false", ""]
    return "\n".join(out)


def qualified_name(obj: Any) -> str:
    """``module.QualName`` of a function or class."""
    return f"{obj.__module__}.{obj.__qualname__}"
