"""`htsgd site` end to end: part of the committed demo record and a bare group, rendered into tmp_path.

The demo record is only read: its group files and two of its runs are copied into a results folder
of the test's own, so the build stays short and the committed record is never touched.
"""

import contextlib
import csv
import io
import re
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote, urlsplit

import pytest
import yaml

from htsgd.cli import main
from htsgd.report.findings import write_findings
from htsgd.record.names import FAILED_NOTEBOOK, FIGURES, NOTEBOOK, RUNS_CSV, SUMMARY, TABLES

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "results" / "demo"

def first_runs(group_dir: Path) -> list[str]:
    """The first run without noise and the first with, as the group's runs.csv names them."""
    with open(group_dir / RUNS_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    return [next(row["id"] for row in rows if row["iterate_noise"] == noise) for noise in ("0", "1")]


DEMO_RUNS = first_runs(DEMO)
CHROMIUM = shutil.which("chromium")
LOWER_LAYERS = ["core", "record", "pipeline", "analysis", "report"]


class Page(HTMLParser):
    """Every href and src of a page, with its tag, and the page's text."""

    def __init__(self, text: str):
        super().__init__()
        self.links, self.words = [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.links += [(tag, name, value) for name, value in attrs if name in ("href", "src") and value is not None]

    def handle_data(self, data):
        self.words.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.words).split())


def make_results(root: Path):
    """results/demo: the committed group files and two runs; results/bare: a runs.csv and one failed run's
    notebook, without params, verdict or figures; results/train: not a group (no runs.csv)."""
    results, params = root / "results", root / "params"
    demo, bare = results / "demo", results / "bare"
    demo.mkdir(parents=True)
    for path in DEMO.iterdir():
        if path.is_file():
            shutil.copyfile(path, demo / path.name)
    for folder in (SUMMARY, TABLES, FIGURES, *DEMO_RUNS):
        shutil.copytree(DEMO / folder, demo / folder)
    (bare / "run1").mkdir(parents=True)
    (bare / RUNS_CSV).write_text("id,status\nrun1,failed\nrun2,pending\nrun3,pending\n")
    write_findings(results)  # what htsgd run writes beside the groups: the verdict links its glossary
    shutil.copyfile(DEMO / DEMO_RUNS[0] / NOTEBOOK, bare / "run1" / FAILED_NOTEBOOK)
    (results / "train" / "some_run").mkdir(parents=True)
    params.mkdir()
    shutil.copyfile(ROOT / "params" / "demo.yaml", params / "demo.yaml")
    return results, params


def build(results: Path, params: Path) -> str:
    """`htsgd site` into <results>/site, as a user runs it; what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["site", "--results_dir", str(results), "--params_dir", str(params)]) == 0
    return printed.getvalue()


def bold_sentence(verdict_md: Path) -> str:
    return re.search(r"\*\*(.+?)\*\*", verdict_md.read_text()).group(1)


def pages(out: Path) -> dict[Path, Page]:
    return {path: Page(path.read_text()) for path in sorted(out.rglob("*.html"))}


def is_external(url: str) -> bool:
    """Anything but a relative path, a fragment or inline data: another host, or a file outside the site."""
    return urlsplit(url).scheme not in ("", "data") or url.startswith("//")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    results, params = make_results(tmp_path_factory.mktemp("site"))
    printed = build(results, params)
    return SimpleNamespace(results=results, params=params, out=results / "site", printed=printed)


def test_index_shows_each_groups_description_verdict_and_status_counts(site):
    assert site.printed.splitlines()[0] == "rebuilt: bare, demo"
    index = Page((site.out / "index.html").read_text()).text
    description = " ".join(yaml.safe_load((site.params / "demo.yaml").read_text())["description"].split())
    with open(site.results / "demo" / RUNS_CSV, newline="") as f:
        demo_runs = len(list(csv.DictReader(f)))
    assert description in index
    assert bold_sentence(site.results / "demo" / TABLES / "verdict.md") in index
    assert f"{demo_runs} runs:" in index
    assert "3 runs: 2 pending, 1 failed" in index
    assert "No description" in index and "No verdict yet" in index  # the bare group has neither
    assert "some_run" not in index and not (site.out / "train").exists()


def test_every_notebook_is_a_page_with_its_images_inside_and_every_file_is_copied(site):
    for group in ("demo", "bare"):
        record, copy = site.results / group, site.out / group
        for notebook in [*record.glob("*.ipynb"), *record.glob("*/*.ipynb")]:
            assert (copy / notebook.relative_to(record)).with_suffix(".html").is_file(), notebook
    assert 'src="data:image/png;base64,' in (site.out / "demo" / "report.html").read_text()
    for path in [site.results / "demo" / RUNS_CSV, *(site.results / "demo").glob(f"{SUMMARY}/*"),
                 *(site.results / "demo").glob(f"{TABLES}/*"), *(site.results / "demo").glob(f"{FIGURES}/*")]:
        if path.is_file():  # summary/runs/, the per-run analysis cache, is no reader's file
            copied = site.out / "demo" / path.relative_to(site.results / "demo")
            assert copied.read_bytes() == path.read_bytes()
    for table in (site.results / "demo" / TABLES).glob("*.md"):
        assert (site.out / "demo" / TABLES / table.name).with_suffix(".html").is_file()


def test_every_relative_link_resolves_to_a_file_inside_the_site(site):
    checked = 0
    for path, page in pages(site.out).items():
        for tag, _, url in page.links:
            if url.startswith(("#", "data:")) or (is_external(url) and tag == "a"):
                continue
            assert not is_external(url), f"{path}: <{tag}> loads {url}"
            target = (path.parent / unquote(urlsplit(url).path)).resolve()
            assert target.is_relative_to(site.out.resolve()) and target.is_file(), f"{path}: {url} does not resolve"
            checked += 1
    assert checked > 20


def test_nothing_is_loaded_from_another_host(site):
    for path in site.out.rglob("*.html"):
        text = path.read_text()
        assert not re.search(r"<(script|link)\b[^>]*\b(src|href)\s*=", text, re.I), path
        assert not re.search(r"@import|@font-face|url\(\s*['\"]?(https?:)?//", text, re.I), path
        assert not [url for tag, _, url in Page(text).links if tag != "a" and is_external(url)], path


def test_only_groups_whose_record_changed_are_rebuilt(tmp_path):
    results, params = make_results(tmp_path)
    assert build(results, params).splitlines()[0] == "rebuilt: bare, demo"
    assert build(results, params).splitlines()[0] == "up to date: bare, demo"
    verdict = results / "demo" / TABLES / "verdict.md"
    verdict.write_text(verdict.read_text().replace(bold_sentence(verdict), "A verdict written by the test."))
    assert build(results, params).splitlines()[:2] == ["rebuilt: demo", "up to date: bare"]
    assert "A verdict written by the test." in Page((results / "site" / "index.html").read_text()).text
    shutil.rmtree(results / "bare")
    assert build(results, params).splitlines()[:2] == ["up to date: demo", "removed: bare"]
    assert not (results / "site" / "bare").exists()


def test_missing_results_folder_is_an_error(tmp_path, capsys):
    assert main(["site", "--results_dir", str(tmp_path / "none")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_the_reader_needs_no_torch_and_no_lower_layer_imports_it():
    code = "import sys, htsgd.reader.site, htsgd.cli; htsgd.cli.build_parser(); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    for layer in LOWER_LAYERS:
        for path in (ROOT / "htsgd" / layer).rglob("*.py"):
            assert not re.search(r"(from\s+(\.\.|htsgd\.)reader|import\s+htsgd\.reader)", path.read_text()), path


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium to render pages (apt-get install chromium); not on PATH")
def test_chromium_shows_the_verdict_and_a_figure(site):
    index = site.out / "index.html"
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                              "--disable-background-networking", "--disable-component-update", "--disable-sync",
                              f"--user-data-dir={profile}", "--dump-dom", index.as_uri()],
                             capture_output=True, text=True, timeout=120, check=True).stdout
    page = Page(dom)
    assert bold_sentence(site.results / "demo" / TABLES / "verdict.md") in page.text
    figures = [url for tag, _, url in page.links if tag == "img" and not url.startswith("data:")]
    assert any((index.parent / unquote(url)).is_file() for url in figures), figures
