"""The README is a front door to docs/: every relative link resolves, to a file and to a heading."""
import re
from pathlib import Path

import pytest
from orchestration.paths import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in anchors(linked)):
            broken.append(target)
    assert broken == []


def test_the_readme_is_a_front_door():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) <= 9 * 1024  # the front door, with the two speed tables it must show
    for page in ("runner", "azure", "container", "settings", "speed", "architecture"):
        assert f"(docs/{page}.md)" in readme


def test_the_docs_speak_to_users_not_to_this_projects_workspace():
    """Users have neither the team's shared/ folder nor its issue tracker: no page or docstring sends them
    there (cite the public sources instead)."""
    texts = [*PAGES, *sorted((ROOT / "src").rglob("*.py")), ROOT / "Makefile", ROOT / ".env.example"]
    found = [f"{path.relative_to(ROOT)}: {match}" for path in texts
             for match in re.findall(r"shared/(?:docs|data)/\S*|\bissue \d+", path.read_text())]
    assert found == []
