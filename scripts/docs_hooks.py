"""MkDocs hook (``mkdocs.yml`` ``hooks:``): the configuration, command-line and API reference
pages are generated from this checkout's code each time the site is built, so they cannot
drift."""

from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

SRC = Path(__file__).resolve().parents[1] / "src"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    sys.path.insert(0, str(SRC))
    from endofm.cli.reference import api_reference, cli_reference, config_reference

    for name, text in (("reference/config.md", config_reference()),
                       ("reference/cli.md", cli_reference()),
                       ("reference/api.md", api_reference())):
        files.append(File.generated(config, name, content=text))
    return files
