"""`htsgd site` is safe to run on any record into any folder: it deletes only what it built, writes no script
into a page, copies nothing from outside the record, and a damaged file costs its own page, not the site.

Each test builds small groups of its own in tmp_path (no demo record): a runs.csv, a table or two and a tiny
notebook, so that each build takes about a second.
"""

import os
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from htsgd.cli import main
from htsgd.reader.site import site_command
from htsgd.record.names import FIGURES, NOTEBOOK, RUNS_CSV, TABLES, VERDICT_MD
from test_site import Page

RUNS = "id,status\nrun1,converged\nrun2,failed\n"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
PAYLOAD = ('<script>alert(1)</script><img src=x onerror=alert(2)><a href="javascript:alert(3)">j</a>'
           '<a href="data:text/html,x">d</a><img src="data:image/svg+xml;base64,PHN2Zz4=">')
BAD_NAMES = ["x<img src=x onerror=alert(1)>", "javascript:alert(1)"]
SAFE_IMAGES = ("data:image/png;base64,", "data:image/jpeg;base64,")
RESULTS, SITE = Path("results"), Path("results", "site")


def make_group(results: Path, name: str = "g", files: dict[str, str | bytes] | None = None, notebook=None) -> Path:
    """results/<name>: a runs.csv, `files` at their paths in the group, and a report.ipynb."""
    group = results / name
    for path, content in {RUNS_CSV: RUNS, **(files or {})}.items():
        (group / path).parent.mkdir(parents=True, exist_ok=True)
        (group / path).write_bytes(content if isinstance(content, bytes) else content.encode())
    nbformat.write(notebook or new_notebook(cells=[new_markdown_cell("# report")]), group / "report.ipynb")
    return group


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path, monkeypatch):
    """Run where the record is, as a user does: messages name paths relative to it (`public_path`)."""
    monkeypatch.chdir(tmp_path)


def site(capsys, out: str | None = None) -> tuple[int, str, str]:
    """`htsgd site` on ./results as a user runs it: its exit status, what it printed and what it said on stderr."""
    code = main(["site", "--results_dir", "results", "--params_dir", "params"] + (["--out", out] if out else []))
    printed = capsys.readouterr()
    return code, printed.out, printed.err


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes: what a refused build must leave as it was."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class Tags(HTMLParser):
    """Every start tag of a page with its attributes, and the page's Content-Security-Policy."""

    def __init__(self, text: str):
        super().__init__()
        self.tags, self.policy = [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "content-security-policy":
            self.policy = attrs.get("content")


def script_in(tag: str, attrs: dict) -> list[str]:
    """What in one tag could run script: the tag itself, an event handler, or a link to script or to a data page."""
    found = [tag] if tag in ("script", "iframe", "object", "embed", "svg", "base", "form") else []
    found += [name for name in attrs if name.startswith("on")]
    for name in ("href", "src", "action", "formaction"):
        url = "".join((attrs.get(name) or "").split()).lower()
        if url.startswith("javascript:") or url.startswith("data:") and not (
                tag == "img" and name == "src" and (attrs.get(name) or "").startswith(SAFE_IMAGES)):
            found.append(f"{name}={attrs[name][:40]}")
    return found


def assert_no_script(out: Path):
    """No page of the site can run script: none is written, and each page's policy forbids any."""
    written = sorted(out.rglob("*.html"))
    assert written
    for path in written:
        text = path.read_text()
        page = Tags(text)
        assert "<script" not in text.lower(), path
        assert [found for tag, attrs in page.tags for found in script_in(tag, attrs)] == [], path
        assert page.policy and "default-src 'none'" in page.policy and "script-src" not in page.policy, path


# 1. The site deletes only what it built

@pytest.mark.parametrize("out", ["results", ".", "results/g", "results/g/pages"])
def test_an_out_over_or_inside_the_record_is_refused_and_nothing_is_touched(tmp_path, capsys, out):
    make_group(RESULTS, files={f"{TABLES}/{VERDICT_MD}": "**A verdict.**\n"})
    before = tree(tmp_path)
    code, _, err = site(capsys, out)
    assert code == 2 and err.startswith(f"htsgd site: error: --out {out} ") and len(err.splitlines()) == 1
    assert tree(tmp_path) == before


def test_an_out_holding_a_users_files_is_refused_even_beside_a_group_of_the_same_name(capsys):
    make_group(RESULTS)
    notes = Path("mydocs", "g", "notes.txt")
    notes.parent.mkdir(parents=True)
    notes.write_text("mine")
    code, _, err = site(capsys, "mydocs")
    assert code == 2 and err.startswith("htsgd site: error: --out mydocs ") and "new or empty folder" in err
    assert tree(Path("mydocs")) == {"g/notes.txt": b"mine"}


def test_a_folder_in_the_site_that_it_did_not_build_is_refused_not_deleted(capsys):
    make_group(RESULTS)
    assert site(capsys)[0] == 0
    make_group(RESULTS, "h")
    notes = SITE / "h" / "notes.txt"
    notes.parent.mkdir()
    notes.write_text("mine")
    code, _, err = site(capsys)
    assert code == 2 and "results/site/h" in err and ".built" in err
    assert notes.read_text() == "mine"


def test_an_earlier_site_without_the_marker_is_taken_over_and_an_empty_out_is_used(capsys):
    make_group(RESULTS)
    assert site(capsys)[0] == 0
    (SITE / ".htsgd-site").unlink(missing_ok=True)  # as a site built before the marker left it
    assert site(capsys)[:2] == (0, "up to date: g\nopen results/site/index.html\n")
    assert (SITE / ".htsgd-site").is_file()
    Path("empty").mkdir()
    assert site(capsys, "empty")[:2] == (0, "rebuilt: g\nopen empty/index.html\n")
    assert Path("empty", "g", "report.html").is_file()


# 2. No page can run script

def test_a_group_name_a_description_and_a_verdict_cannot_put_script_in_a_page(capsys):
    Path("params").mkdir()
    for name in BAD_NAMES:
        make_group(RESULTS, name, files={f"{TABLES}/{VERDICT_MD}": f"**{PAYLOAD} verdict**\n\n{PAYLOAD}\n"})
        Path("params", f"{name}.yaml").write_text(yaml.safe_dump({"description": PAYLOAD}))
    assert site(capsys)[0] == 0
    assert_no_script(SITE)
    assert len(list(SITE.glob(f"*/{TABLES}/verdict.html"))) == 2


def test_notebook_outputs_and_markdown_cells_cannot_put_script_in_a_page(capsys):
    outputs = [new_output("display_data", data={"text/html": PAYLOAD}),
               new_output("display_data", data={"text/markdown": PAYLOAD}),
               new_output("execute_result", data={"image/png": PNG}, execution_count=1)]
    notebook = new_notebook(cells=[new_markdown_cell(f"# Heading\n\n{PAYLOAD}\n\n[j](javascript:alert(4))"),
                                   new_code_cell("show(1)", outputs=outputs, execution_count=1)])
    make_group(RESULTS, files={f"{TABLES}/t.md": f"| a | b |\n|--:|---|\n| 1 | {PAYLOAD} |\n"}, notebook=notebook)
    assert site(capsys)[0] == 0
    assert_no_script(SITE)
    report = (SITE / "g" / "report.html").read_text()
    assert f'src="data:image/png;base64,{PNG}"' in report and "<h1" in report and '<span class="' in report
    assert 'style="text-align' in (SITE / "g" / TABLES / "t.html").read_text()


# 3. Nothing from outside the record

def test_files_linked_out_of_the_group_are_neither_copied_nor_shown(tmp_path, capsys):
    secret = tmp_path / "secret.txt"
    secret.write_text("**SECRET of this machine**\n| a |\n|---|\n| SECRET |\n")
    group = make_group(RESULTS, files={f"{TABLES}/ok.md": "| a |\n|---|\n| 1 |\n"})
    (group / FIGURES).mkdir()
    (group / FIGURES / "leak.png").symlink_to(secret)
    (group / TABLES / "leak.md").symlink_to(secret)
    (group / TABLES / VERDICT_MD).symlink_to(secret)
    code, _, err = site(capsys)
    assert code == 0 and (SITE / "g" / TABLES / "ok.html").is_file()
    assert not [path for path, content in tree(SITE).items() if b"SECRET" in content]
    assert not (SITE / "g" / FIGURES / "leak.png").exists() and "leak" not in (SITE / "index.html").read_text()
    for name in (f"{FIGURES}/leak.png", f"{TABLES}/leak.md", f"{TABLES}/{VERDICT_MD}"):
        assert len([line for line in err.splitlines() if f"results/g/{name}" in line]) == 1, err
    assert str(tmp_path) not in err


# 4. A damaged file costs its own page, not the site

def test_a_garbled_notebook_or_markdown_file_is_named_and_the_rest_is_built(tmp_path, capsys):
    damaged = {"broken.ipynb": '{"cells": [', f"run1/{NOTEBOOK}": os.urandom(200), "list.ipynb": "[1, 2]",
               "invalid.ipynb": '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{}]}',
               f"{TABLES}/bad.md": b"\xff\xfe| a |\x00\x9c\n", f"{TABLES}/{VERDICT_MD}": b"**\xff verdict**\n"}
    make_group(RESULTS, files={f"{TABLES}/ok.md": "| a |\n|---|\n| 1 |\n", **damaged})
    for _ in range(2):  # a group with a skipped file is not marked built: the next build tries again
        code, printed, err = site(capsys)
        assert code == 1 and printed.startswith("rebuilt: g") and "Traceback" not in err
        assert len(err.splitlines()) == len(damaged) and str(tmp_path) not in err
        for name in damaged:
            assert len([line for line in err.splitlines() if f"results/g/{name}:" in line]) == 1, err
    assert (SITE / "g" / "report.html").is_file() and (SITE / "g" / TABLES / "ok.html").is_file()
    assert not (SITE / "g" / "broken.html").exists() and not (SITE / "g" / TABLES / "bad.html").exists()
    index = Page((SITE / "index.html").read_text())
    assert "2 runs: 1 converged, 1 failed" in index.text
    assert [url for _, _, url in index.links if url[0] != "#" and not (SITE / unquote(url)).is_file()] == []


@pytest.mark.parametrize("runs", [os.urandom(300) + b"\x00", b"just,some\ntext,here\n", b"id,status\n\x00\x00\n"])
def test_a_garbled_runs_csv_is_named_in_one_line_and_the_group_still_shown(capsys, runs):
    make_group(RESULTS, files={RUNS_CSV: runs})
    code, _, err = site(capsys)
    assert code == 1 and "Traceback" not in err
    assert len(err.splitlines()) == 1 and f"results/g/{RUNS_CSV}:" in err
    index = (SITE / "index.html").read_text()
    assert "<h2>g</h2>" in index and 'href="g/report.html"' in index


def test_a_params_file_that_is_not_yaml_leaves_the_group_without_description(tmp_path):
    results, params = tmp_path / "results", tmp_path / "params"
    (results / "g").mkdir(parents=True)
    (results / "g" / "runs.csv").write_text("id,status\nr1,converged\n")
    params.mkdir()
    (params / "g.yaml").write_bytes(b"description: [unclosed\n\xff\xfe")
    assert site_command(results, tmp_path / "site", params) == 0
    assert "No description" in (tmp_path / "site" / "index.html").read_text()


def test_html_and_svg_files_in_a_group_are_neither_copied_nor_linked(capsys):
    make_group(RESULTS, files={f"{TABLES}/evil.html": "<script>alert(1)</script>",
                               f"{FIGURES}/evil.svg": '<svg><script>alert(1)</script></svg>'})
    code, _, err = site(capsys)
    assert code == 0 and "evil.html" in err and "evil.svg" in err
    assert not (SITE / "g" / TABLES / "evil.html").exists() and not (SITE / "g" / FIGURES / "evil.svg").exists()
    assert "evil" not in (SITE / "index.html").read_text()


@pytest.mark.parametrize("url", ["../../../../etc/passwd", "/etc/passwd", "//evil.example/p", "\\\\evil.example/p",
                                 "../../../outside.html"])
def test_no_link_or_image_leads_out_of_the_site(capsys, url):
    make_group(RESULTS, notebook=new_notebook(cells=[new_markdown_cell(f'<a href="{url}">a</a><img src="{url}">')]))
    code, _, _ = site(capsys)
    assert code == 0
    text = (SITE / "g" / "report.html").read_text()
    assert not [attrs for _, attrs in Tags(text).tags for name in ("href", "src") if attrs.get(name) == url]
    assert 'href="../index.html"' in text  # the site's own link back is kept


def test_a_linked_group_folder_and_a_group_named_like_a_site_file_are_left_out(tmp_path, capsys):
    make_group(tmp_path / "elsewhere", "secret", files={f"{TABLES}/{VERDICT_MD}": "**private**\n"})
    RESULTS.mkdir()
    (RESULTS / "zz").symlink_to(tmp_path / "elsewhere" / "secret")
    make_group(RESULTS, "index.html")
    make_group(RESULTS, "g")
    code, _, err = site(capsys)
    assert code == 0 and "zz" in err and "index.html" in err
    assert not (SITE / "zz").exists() and "private" not in (SITE / "index.html").read_text()
    assert (SITE / "g" / "report.html").is_file()
