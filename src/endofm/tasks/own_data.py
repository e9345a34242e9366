"""What the tasks that read either a public dataset's release layout or an own-data format
share: which of the two the bound data is, and the own data's validation split."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar


class ReleaseOrOwnData:
    """A task mixin (before :class:`~endofm.tasks.base.Task`): ``release_format`` names the
    public dataset's layout (PolypDiag, CVC-12k, KUMC), ``format`` the layout of the data the
    task is bound to (``None`` before it is bound: the release layout's conventions hold)."""

    release_format: ClassVar[str]
    format: str | None = None

    def from_release(self) -> bool:
        """Whether the data is (taken as) the release layout rather than an own format."""
        return self.format in (None, self.release_format)

    def given_split(self, root: str | Path, split: str) -> list | None:
        """The own data's ``split`` (``val``: the items it assigns to validation), if it names
        any; ``None`` for the release layout (the engine carves one)."""
        if self.from_release():
            return None
        return self.read_items(root, split) or None  # type: ignore[attr-defined]
