"""``endofm configs``: list the packaged recipes and print one."""

from __future__ import annotations

import argparse

from endofm.config import RECIPES, recipe_groups, recipe_names, recipe_path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "configs", help="list the packaged recipes, or print one",
        description="Without arguments, list the recipes that ship with endofm, one group per "
                    "command (pretrain, classification, segmentation, detection, phase). "
                    "With GROUP and NAME, print that recipe's YAML (what `--config NAME` reads).")
    p.add_argument("group", nargs="?", help="recipe group (a command or task name)")
    p.add_argument("name", nargs="?", help="recipe name, e.g. tiny")
    p.set_defaults(func=run)


def summary(group: str, name: str) -> str:
    """The first comment line of a recipe (its one-line description)."""
    for line in recipe_path(group, name).read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def run(args: argparse.Namespace) -> int:
    if args.group is not None and args.group not in recipe_groups():
        raise ValueError(f"no recipe group {args.group!r} (groups: {', '.join(recipe_groups())})")
    if args.name is not None:
        print(recipe_path(args.group, args.name).read_text(encoding="utf-8"), end="")
        return 0
    print(f"recipes in {RECIPES} (use `--config NAME`):")
    for group in [args.group] if args.group else recipe_groups():
        for name in recipe_names(group):
            print(f"  {group:15s} {name:12s} {summary(group, name)}")
    return 0
