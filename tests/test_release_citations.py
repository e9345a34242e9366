"""Every citation of the original release points at a section of ``docs/release.md`` that exists,
and nothing cites a file users do not have."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RELEASE = ROOT / "docs" / "release.md"
SEARCHED = ("src", "tests", "benchmarks", "scripts", "docs")
SUFFIXES = {".py", ".yaml", ".md"}
# ``docs/release.md#anchor`` in code and recipes, ``release.md#anchor`` in docs' links, ``#anchor``
# in links inside release.md itself
CITATION = re.compile(r"(?:docs/)?release\.md#([a-z0-9-]+)")
SELF_LINK = re.compile(r"\]\(#([a-z0-9-]+)\)")


def slug(heading: str) -> str:
    """The anchor GitHub and MkDocs give a Markdown heading: lower case, punctuation dropped,
    spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors() -> set[str]:
    headings = re.findall(r"^#{2,4} (.+)$", RELEASE.read_text(encoding="utf-8"), re.MULTILINE)
    return {slug(heading) for heading in headings}


def cited_files() -> list[Path]:
    return sorted(path for folder in SEARCHED for path in (ROOT / folder).rglob("*")
                  if path.suffix in SUFFIXES and path.is_file()
                  and path.resolve() != Path(__file__).resolve())


def test_slug_follows_the_heading_rules() -> None:
    assert slug("CVC-12k segmentation") == "cvc-12k-segmentation"
    assert slug("Known flaws of the release") == "known-flaws-of-the-release"
    assert slug("Pre-training recipe") == "pre-training-recipe"


def test_every_cited_section_exists() -> None:
    known = anchors()
    cited = {(path.relative_to(ROOT).as_posix(), anchor) for path in cited_files()
             for anchor in CITATION.findall(path.read_text(encoding="utf-8"))}
    cited |= {("docs/release.md", anchor)
              for anchor in SELF_LINK.findall(RELEASE.read_text(encoding="utf-8"))}
    assert len(cited) >= 10, cited  # the recipes, loaders and metrics cite it
    missing = sorted((where, anchor) for where, anchor in cited if anchor not in known)
    assert not missing, f"sections not in docs/release.md: {missing}; it has {sorted(known)}"


@pytest.mark.parametrize("recipe", ["pretrain/endofm_vitb", "pretrain/endofm_vitb_release",
                                    "classification/polypdiag", "classification/polypdiag_release",
                                    "segmentation/cvc12k", "segmentation/cvc12k_release",
                                    "detection/kumc"])
def test_release_recipes_cite_their_section(recipe: str) -> None:
    path = ROOT / "src" / "endofm" / "configs" / f"{recipe}.yaml"
    header = "".join(line for line in path.read_text(encoding="utf-8").splitlines(True)[:3])
    assert CITATION.search(header), f"{path.name}: the first lines cite no docs/release.md section"


def test_no_citation_of_a_file_outside_the_repository() -> None:
    offenders = [path.relative_to(ROOT).as_posix() for path in cited_files()
                 if re.search(r"\bENDOFM\.md\b", path.read_text(encoding="utf-8"))]
    assert not offenders
