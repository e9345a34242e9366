"""``endofm --version`` prints the installed distribution's version (from the git tag)."""

from __future__ import annotations

from importlib.metadata import version

import pytest

import endofm
from endofm.cli.main import main


def test_version_is_the_installed_distributions(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"endofm {version('endofm')}"
    assert endofm.__version__ == version("endofm")
