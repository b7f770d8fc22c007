"""The README stays a short guide, and no link of the README or of docs/ leads nowhere.

The README holds what a newcomer needs first (what htsgd is, the findings, quick start, where to look, how to
run) and links every page of docs/, where the rest lives. Links are checked as files on disk, relative to the
page that holds them, so a moved or renamed page or record file is caught here rather than by a reader.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 250

LINK = re.compile(r"\]\(([^)\s]+)\)")  # the target of a Markdown link or image
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)  # fenced blocks and inline code: examples, not links
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:


def relative_links(text: str) -> list[str]:
    """The file each relative link of `text` points to (its anchor dropped), outside code."""
    targets = (target.split("#", 1)[0] for target in LINK.findall(CODE.sub("", text)))
    return [target for target in targets if target and not EXTERNAL.match(target)]


def pages() -> list[Path]:
    return [README] + sorted(DOCS.glob("*.md"))


def test_relative_links_finds_links_outside_code_only():
    text = ("See [a](docs/a.md#part), ![b](results/x.png), [web](https://example.org), [top](#quick-start), "
            "`[c](not/a/link.md)`\n```\n[d](nor/this.md)\n```\n")
    assert relative_links(text) == ["docs/a.md", "results/x.png"]


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, (f"README.md has {len(lines)} lines, at most {MAX_README_LINES} allowed: "
                                            "move detail to a page of docs/ and link it")


@pytest.mark.parametrize("page", pages(), ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_reaches_a_file(page):
    missing = [target for target in relative_links(page.read_text(encoding="utf-8"))
               if not (page.parent / target).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to files that do not exist: {missing}"


def test_readme_links_every_docs_page():
    linked = {(ROOT / target).resolve() for target in relative_links(README.read_text(encoding="utf-8"))}
    guides = sorted(DOCS.glob("*.md"))
    assert guides, "docs/ holds no page"
    unlinked = [guide.name for guide in guides if guide.resolve() not in linked]
    assert not unlinked, f"README.md links no docs page named {unlinked}"
