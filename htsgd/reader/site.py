"""The record as static HTML: `htsgd site` renders every group under results/ into one folder of plain pages.

Not every reader of a record has Jupyter. The site needs nothing but a browser: each executed notebook
becomes a page (nbconvert's `basic` template, its images embedded, no script or font from anywhere), and
the group's CSVs, tables and figures are copied beside the pages, at the paths they have in the record, so
that every link is relative and the folder can be opened from disk or served by any static server. A
group is rebuilt only when what it shows changed: the digest of its inputs is kept in `<out>/<group>/.built`.

A record is anyone's files, and `--out` any folder, so the site is built to be safe on both:
- it deletes only what it built. `--out` must be a new or empty folder, or one marked by an earlier build
  (`.htsgd-site`); a site from before the marker (an index.html of its own beside group folders holding
  `.built`) is taken over. It never goes over the record (the results folder, a folder above it or inside a
  group), and in its folder it deletes only a group's folder holding `.built`: any other is refused.
- no page runs script: every body is cleaned by ammonia (nh3) to plain markup, links to the site or the
  web, images from the site or inline PNG/JPEG, and each page's Content-Security-Policy forbids script.
- it shows only a group's own files: a link, or a file that resolves outside the group, is left out, said so.
- a file it cannot read (a garbled notebook, Markdown that is not UTF-8, a runs.csv without a status
  column) is named on stderr and skipped, the rest is built, and the command exits 1; the group is not
  marked built, so the next build tries it again.
"""

import csv
import functools
import html
import os
import posixpath
import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import nbformat
import nh3
import yaml
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import markdown2html_mistune
from pygments.formatters import HtmlFormatter

from ..errors import UserError
from ..record import storage
from ..record.digests import digest, file_digest
from ..record.names import FAILED_NOTEBOOK, FIGURES, FINDINGS_MD, NOTEBOOK, PROVENANCE, RUNS_CSV, SUMMARY, TABLES, VERDICT_MD
from ..record.public_paths import public_path

DOCS_SOURCE, DOCS = Path("docs"), "_docs"  # the guides, and their pages' folder (no group can be named so)
FINDINGS_HTML = "FINDINGS.html"
REPOSITORY_LINK = re.compile(r"\[([^\]]+)\]\(\.\./(?!results/|README\.md\))([^)\s]+)\)")  # a guide's other links out
MARKDOWN_LINK = re.compile(r"\]\((?!\w+:|/)([^)#\s]+)\.(?:md|ipynb)(#[^)\s]*)?\)")  # to a file the site makes a page of
BUILT, UNFINISHED = ".built", "unfinished\n"  # marks a group's folder as the site's; its digest once complete
SITE_MARK = ".htsgd-site"
INDEX, TITLE = "index.html", "htsgd: the record"
WHAT_TO_DO = "restore it (git checkout) or re-run what wrote it, then run htsgd site again"
CSP = ("default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'; base-uri 'none'; "
       "form-action 'none'")  # no script at all; file: for a site opened from disk, where 'self' may match no file
TAGS = nh3.ALLOWED_TAGS | {"section"}
ATTRIBUTES = {**nh3.ALLOWED_ATTRIBUTES, "*": {"class", "id", "title"},  # classes: code colours; ids: anchors
              "img": nh3.ALLOWED_ATTRIBUTES["img"] | {"loading"},
              **{row: nh3.ALLOWED_ATTRIBUTES[row] | {"style"} for row in ("tr", "td", "th")}}  # text-align alone
INLINE_IMAGES = ("data:image/png;base64,", "data:image/jpeg;base64,")  # not SVG: it can carry script
SERVED = (".csv", ".gz", ".json", ".md", ".ipynb", ".png", ".jpg", ".jpeg", ".txt")  # what a record holds
REBUILT, UP_TO_DATE, REMOVED = "rebuilt", "up to date", "removed"
CSS = """
body { font-family: system-ui, sans-serif; max-width: 75rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45;
       color: #222; }
section { border-top: 1px solid #ccc; margin-top: 2rem; }
.verdict { font-size: 1.1rem; }
.none { color: #777; font-style: italic; }
figure { display: inline-block; margin: 0 1rem 1rem 0; }
figure img { width: 34rem; max-width: 100%; border: 1px solid #ddd; }
img { max-width: 100%; }
table { border-collapse: collapse; font-size: .85rem; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: .2rem .4rem; vertical-align: top; }
pre { background: #f6f8fa; padding: .5rem; overflow-x: auto; }
.prompt { color: #888; font-size: .8rem; }
.anchor-link { color: #bbb; text-decoration: none; margin-left: .3rem; }
.output_stderr pre { background: #fdecea; }
"""


class Unreadable(Exception):
    """A record file the site cannot show: it is skipped, named, and the build goes on without it."""

    def __init__(self, path: Path, what: str):
        self.path = path
        super().__init__(f"skipped {public_path(path)}: {what}; {WHAT_TO_DO}")


class Skipped(dict):
    """The files a build skipped, each named once on stderr: no page links to them, and `htsgd site` exits 1."""

    def unless_unreadable(self, read, *args):
        """`read(*args)`, or None when it raises Unreadable: the site is built without that file."""
        try:
            return read(*args)
        except Unreadable as err:
            if err.path not in self:
                self[err.path] = str(err)
                print(f"htsgd site: {err}", file=sys.stderr)
            return None


def site_command(results_dir, out, params_dir) -> int:
    """`htsgd site`: build, then say which groups were rebuilt and which were up to date; 1 if a file was skipped."""
    outcomes, skipped = build_site(results_dir, out, params_dir)
    for outcome in (REBUILT, UP_TO_DATE, REMOVED):
        names = [group for group, done in outcomes.items() if done == outcome]
        if names:
            print(f"{outcome}: {', '.join(names)}")
    print(f"open {public_path(Path(out) / INDEX)}")
    return 1 if skipped else 0


def build_site(results_dir, out, params_dir, docs_dir=DOCS_SOURCE) -> tuple[dict[str, str], Skipped]:
    """Render every group of `results_dir` into `out`, FINDINGS.md first on the index, and the guides of
    `docs_dir`: each group's outcome (rebuilt, up to date or removed), and the files skipped as unreadable."""
    results_dir, out, params_dir, docs_dir = Path(results_dir), Path(out), Path(params_dir), Path(docs_dir)
    if not results_dir.is_dir():
        raise UserError(f"{public_path(results_dir)} is not a folder: nothing to render")
    groups = find_groups(results_dir)
    claim(out, results_dir, groups)
    skipped = Skipped()
    for group in groups:
        for path in left_out(group):
            print(f"htsgd site: left out {public_path(path)}: a link, a file outside {public_path(group)}, or of a "
                  f"kind the site does not serve ({', '.join(SERVED)}); the site shows only a group's own files",
                  file=sys.stderr)
    outcomes = {group.name: update_group(group, out / group.name, params_dir / f"{group.name}.yaml", skipped)
                for group in groups}
    outcomes.update({folder.name: REMOVED for folder in remove_gone(out, {group.name for group in groups})})
    sections = "\n".join(group_section(group, params_dir / f"{group.name}.yaml", skipped) for group in groups)
    guides = publish_docs(docs_dir, out / DOCS, out / INDEX)
    findings = results_dir / FINDINGS_MD
    opening = ""
    if findings.is_file():
        opening = skipped.unless_unreadable(lambda path: markdown_page_body(read_text(path)), findings) or ""
        if opening:  # the page, and the file itself for the notebooks' links to it
            storage.write_text(out / FINDINGS_HTML, page(FINDINGS_MD, opening, INDEX))
            shutil.copyfile(findings, out / FINDINGS_MD)
    storage.write_text(out / INDEX, page(TITLE, index_body(groups, sections, opening, guides)))
    return outcomes, skipped


def markdown_page_body(text: str) -> str:
    """Markdown as HTML, its relative links to Markdown files and notebooks turned to the site's pages of them."""
    return markdown2html_mistune(MARKDOWN_LINK.sub(r"](\1.html\2)", text))


def guide_body(text: str) -> str:
    """A guide's page: its links into the repository go where the site keeps the same thing (groups at its root,
    the README as the index), and a link to any other repository file, which the site does not hold, is named."""
    text = REPOSITORY_LINK.sub(r"\1 (`\2` in the repository)", text)
    return markdown_page_body(text.replace("](../results/", "](../").replace("](../README.md)", f"](../{INDEX})"))


def publish_docs(docs_dir: Path, target: Path, index: Path) -> list[Path]:
    """Every guide `docs_dir/*.md` as a page in `target` (a folder only the site writes, made anew); the pages."""
    if built(target):
        shutil.rmtree(target)
    guides = sorted(docs_dir.glob("*.md")) if docs_dir.is_dir() else []
    if not guides:
        return []
    pages = [storage.write_text(target / f"{guide.stem}.html",
                                page(guide.name, guide_body(read_text(guide)), link(index, target)))
             for guide in guides]
    storage.write_text(target / BUILT, "the site's guides\n")
    return pages


def find_groups(results_dir: Path) -> list[Path]:
    """Every folder holding a group's `runs.csv`, except a link (it could publish any folder of this machine) and a
    name the site keeps for itself; those are named. The site's own folder is never one (`claim` refuses it)."""
    groups = []
    for folder in sorted(p for p in results_dir.iterdir() if (p / RUNS_CSV).is_file()):
        if folder.is_symlink() or folder.name.startswith(".") or folder.name == INDEX:
            print(f"htsgd site: left out {public_path(folder)}: a link, or a name the site keeps for its own files; "
                  "the site shows only group folders of the record itself", file=sys.stderr)
        else:
            groups.append(folder)
    return groups


def claim(out: Path, results_dir: Path, groups: list[Path]):
    """Refuse an `out` where the site would delete what it did not write; then mark it as the site's own."""
    where = out.resolve()
    if results_dir.resolve().is_relative_to(where) or any(where.is_relative_to(g.resolve()) for g in groups):
        default = results_dir / "site"
        raise UserError(f"--out {public_path(out)} holds or lies in the record {public_path(results_dir)}, and the "
                        "site replaces what is in its folder: give one outside every group"
                        + ("" if where == default.resolve() else f", such as the default {public_path(default)}"))
    if not (out / SITE_MARK).is_file() and not earlier_site(out):
        raise UserError(f"--out {public_path(out)} holds files htsgd site did not write (no {SITE_MARK} in it), and "
                        "the site replaces what is in its folder: give a new or empty folder")
    for folder in [out / group.name for group in groups] + [out / DOCS]:
        if not replaceable(folder):
            raise UserError(f"{public_path(folder)} holds files htsgd site did not write (no {BUILT} in it), and the "
                            "site would replace it with the group's pages: move it away, or give another --out")
    storage.write_text(out / SITE_MARK, "htsgd site built this folder, and rewrites what it built in it\n")


def earlier_site(out: Path) -> bool:
    """A folder the site may take without its mark: none yet, an empty one, or a site built before the mark
    (its own index.html, known by its title, beside group folders holding `.built` and nothing else)."""
    if not out.is_dir():
        return not out.exists()
    entries, index = list(out.iterdir()), out / INDEX
    ours = index.is_file() and f"<title>{TITLE}</title>" in index.read_text(errors="replace")
    return not entries or ours and all(p == index or built(p) for p in entries)


def built(folder: Path) -> bool:
    """A group's folder the site built: it holds `.built` (a link to a folder never counts)."""
    return folder.is_dir() and not folder.is_symlink() and (folder / BUILT).is_file()


def replaceable(folder: Path) -> bool:
    """A group's folder the site may delete or write: one it built, or none yet, or an empty one."""
    if built(folder) or not folder.exists():
        return True
    return folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir())


def candidates(group_dir: Path) -> list[Path]:
    """Every file the site would show of a group: runs.csv, provenance, summaries, tables and figures, then its
    executed notebooks and each run's; one still executing (`.running.ipynb`) is not record yet."""
    files = [group_dir / RUNS_CSV, group_dir / PROVENANCE]
    files += [p for folder in (SUMMARY, TABLES, FIGURES) for p in sorted((group_dir / folder).glob("*"))]
    files += sorted(p for p in group_dir.glob("*.ipynb") if not p.name.endswith(".running.ipynb"))
    files += sorted(p for name in (NOTEBOOK, FAILED_NOTEBOOK) for p in group_dir.glob(f"*/{name}"))
    return [p for p in files if p.is_file()]


def own(path: Path, group_dir: Path) -> bool:
    """A file of the group itself, of a kind the site serves: not a link, inside the group's folder with every link
    on its way followed (a link could show any file of this machine, `figures/x.png -> /etc/passwd`), and no page
    or image that a browser would run unchecked (an .html or .svg file is left out: only notebooks and Markdown
    become pages, and those are cleaned)."""
    return (not path.is_symlink() and path.resolve().is_relative_to(group_dir.resolve())
            and path.suffix.lower() in SERVED)


def record_files(group_dir: Path) -> list[Path]:
    """What the site shows of a group: these files are copied (notebooks rendered), and only they decide a rebuild."""
    return [p for p in candidates(group_dir) if own(p, group_dir)]


def left_out(group_dir: Path) -> list[Path]:
    """The group's files that are links or lie outside it: never shown."""
    return [p for p in candidates(group_dir) if not own(p, group_dir)]


def inputs_digest(group_dir: Path, params_path: Path) -> str:
    """The record files, the params file (the description) and this module: a change to any of them rebuilds."""
    return digest({"record": {p.relative_to(group_dir).as_posix(): file_digest(p) for p in record_files(group_dir)},
                   "params": file_digest(params_path) if params_path.is_file() else None,
                   "site": file_digest(__file__)})


def update_group(group_dir: Path, site_dir: Path, params_path: Path, skipped: Skipped) -> str:
    """Rebuild the group's pages from scratch unless `.built` holds the digest of its current inputs."""
    wanted = inputs_digest(group_dir, params_path)
    if (site_dir / BUILT).is_file() and (site_dir / BUILT).read_text() == wanted:
        return UP_TO_DATE
    if built(site_dir):  # `claim` refused any other folder there but an empty one
        shutil.rmtree(site_dir)
    storage.write_text(site_dir / BUILT, UNFINISHED)  # first: the folder is the site's from now on
    home = site_dir.parent / INDEX
    published = [skipped.unless_unreadable(publish, path, site_dir / path.relative_to(group_dir), home)
                 for path in record_files(group_dir)]
    if all(published):  # last: a build cut short, or one that skipped a file, is redone
        storage.write_text(site_dir / BUILT, wanted)
    return REBUILT


def remove_gone(out: Path, groups: set[str]) -> list[Path]:
    """Remove the pages of groups whose record is gone; only folders this module built (they hold `.built`)."""
    gone = sorted(p.parent for p in out.glob(f"*/{BUILT}")
                  if p.parent.name not in groups | {DOCS} and built(p.parent))
    for folder in gone:
        shutil.rmtree(folder)
    return gone


def publish(source: Path, target: Path, index: Path) -> Path:
    """A notebook becomes `<name>.html`; any other file is copied, and a Markdown table also gets a page.
    What it wrote last; Unreadable, and no page, for a notebook or Markdown file that does not read."""
    target.parent.mkdir(parents=True, exist_ok=True)
    home = link(index, target.parent)
    if source.suffix == ".ipynb":
        body, _ = exporter().from_notebook_node(read_notebook(source))
        return storage.write_text(target.with_suffix(".html"), page(target.name, body, home, notebook=True))
    shutil.copyfile(source, target)
    if source.suffix == ".md":
        return storage.write_text(target.with_suffix(".html"), page(source.name, markdown_page_body(read_text(source)),
                                                                    home))
    return target


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook in `path`, checked against its schema first, so that a garbled one is named, not rendered."""
    try:
        notebook = nbformat.reads(read_text(path), as_version=4)
        nbformat.validate(notebook)
    except (ValueError, AttributeError, nbformat.ValidationError) as err:
        raise Unreadable(path, f"not a notebook ({' '.join(str(err).split())[:100]})") from None
    return notebook


def read_text(path: Path) -> str:
    """A record file's text; Unreadable when it is not UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise Unreadable(path, "not UTF-8 text") from None


@functools.cache
def exporter() -> HTMLExporter:
    """nbconvert's `basic` template: the cells alone, no require.js or MathJax from a CDN; images inline."""
    return HTMLExporter(template_name="basic", embed_images=True)


def page(title: str, body: str, home: str | None = None, notebook: bool = False) -> str:
    """A whole page: its own inline style (and syntax colours for a notebook), nothing loaded from elsewhere,
    its body cleaned, and a policy that no script runs."""
    style = CSS + (HtmlFormatter().get_style_defs(".highlight") if notebook else "")
    back = f'<p><a href="{home}">&larr; every group</a></p>\n' if home else ""
    depth = home.count("../") if home else 0
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n<title>{html.escape(title)}</title>\n'
            f"<style>{style}</style>\n</head>\n<body>\n{clean(back + body, depth)}\n</body>\n</html>\n")


def clean(body: str, depth: int = 0) -> str:
    """The body as markup alone: a notebook's HTML output, a Markdown cell or a table can hold any HTML. `depth`:
    how many folders below the site's root the page lies, so that no relative link climbs out of the site."""
    return nh3.clean(body, tags=TAGS, attributes=ATTRIBUTES, attribute_filter=functools.partial(url_filter, depth),
                     filter_style_properties={"text-align"}, url_schemes={"http", "https", "data"})


def url_filter(depth: int, tag: str, attribute: str, value: str) -> str | None:
    """A link or image source survives only as an http(s) URL, a relative one that stays inside the site, or (an
    image alone) inline PNG or JPEG data: a data: link or SVG image is a document that can run script, and an
    absolute path or `//host` reaches files or hosts outside the site. Spaces and control characters are dropped
    first, as a browser drops them from a URL, and a backslash reads as the slash a browser takes it for."""
    if attribute not in ("href", "src"):
        return value
    url = re.sub(r"[\x00-\x20]", "", value).replace("\\", "/")
    if url.lower().startswith("data:"):
        return value if tag == "img" and attribute == "src" and value.startswith(INLINE_IMAGES) else None
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return value if parts.scheme.lower() in ("http", "https") and parts.netloc else None
    if parts.path.startswith("/"):
        return None
    segments = posixpath.normpath(unquote(parts.path)).split("/") if parts.path else []
    climbs = next((i for i, segment in enumerate(segments) if segment != ".."), len(segments))  # `..` only lead
    return value if climbs <= depth else None


def link(path: Path, start: Path) -> str:
    """`path` as a relative URL from a page in folder `start`."""
    return quote(Path(os.path.relpath(path, start)).as_posix())


def index_body(groups: list[Path], sections: str, findings: str = "", guides: list[Path] = ()) -> str:
    """The index: FINDINGS.md's page body first, then the guides, then a section per group."""
    docs = " · ".join(f'<a href="{DOCS}/{quote(p.name)}">{html.escape(p.stem)}</a>' for p in guides)
    head = f"<h1>{TITLE}</h1>\n{findings}\n" + (f"<p>Guides: {docs}</p>\n" if docs else "")
    if not groups:
        return head + '<p class="none">No group record (no folder with a runs.csv) yet.</p>'
    contents = " · ".join(f'<a href="#{quote(g.name)}">{html.escape(g.name)}</a>' for g in groups)
    return f"{head}<p>Groups: {contents}</p>\n{sections}"


def group_section(group_dir: Path, params_path: Path, skipped: Skipped) -> str:
    """A group on the index: what it is, its verdict, how its runs ended, its figures and links to the rest."""
    name = group_dir.name
    parts = [f'<section id="{html.escape(name)}">\n<h2>{html.escape(name)}</h2>',
             paragraph(description(params_path), "description", f"No description ({public_path(params_path)} "
                       "not found or without one)."),
             paragraph(skipped.unless_unreadable(verdict_sentence, group_dir), "verdict",
                       "No verdict yet (the report has not run)."),
             paragraph(skipped.unless_unreadable(status_counts, group_dir), "runs", "No run read from runs.csv."),
             figures(group_dir), notebook_links(group_dir, skipped), file_links(group_dir, skipped), "</section>"]
    return "\n".join(part for part in parts if part)


def paragraph(text: str | None, kind: str, missing: str) -> str:
    if text is None:
        return f'<p class="{kind} none">{html.escape(missing)}</p>'
    shown = f"<strong>{html.escape(text)}</strong>" if kind == "verdict" else html.escape(text)
    return f'<p class="{kind}">{shown}</p>'


def description(params_path: Path) -> str | None:
    """The params file's description; a file that does not read as YAML has none (`htsgd run` names its fault)."""
    try:
        params = yaml.safe_load(params_path.read_text()) if params_path.is_file() else None
    except (yaml.YAMLError, UnicodeDecodeError):
        params = None
    text = params.get("description") if isinstance(params, dict) else None
    return " ".join(str(text).split()) if text else None


def verdict_sentence(group_dir: Path) -> str | None:
    """The bold sentence of tables/verdict.md: what the group found, in one line."""
    path = group_dir / TABLES / VERDICT_MD
    lines = read_text(path).splitlines() if path.is_file() and own(path, group_dir) else []
    return next((line[2:].split("**", 1)[0] for line in lines if line.startswith("**")), None)


def status_counts(group_dir: Path) -> str | None:
    """`36 runs: 30 converged, 6 failed`, from runs.csv's status column."""
    path = group_dir / RUNS_CSV
    if not own(path, group_dir):
        return None
    try:
        with open(path, newline="", encoding="utf-8") as f:
            counts = Counter(row["status"] for row in csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error, KeyError):
        counts = Counter({None: 1})
    if None in counts:  # undecodable, no status column, or a row cut short before it
        raise Unreadable(path, "not a CSV with a status in every row; the index shows the group without run counts")
    total = sum(counts.values())
    if not total:
        return None
    return f"{total} runs: " + ", ".join(f"{n} {status}" for status, n in counts.most_common())


def site_link(group_dir: Path, path: Path, text: str, suffix: str | None = None) -> str:
    """A link from the index to the site's copy of a record file (or to its page, with `suffix`)."""
    target = Path(group_dir.name) / path.relative_to(group_dir)
    return f'<a href="{quote((target.with_suffix(suffix) if suffix else target).as_posix())}">{html.escape(text)}</a>'


def figures(group_dir: Path) -> str:
    shown = []
    for path in (p for p in record_files(group_dir) if p.parent == group_dir / FIGURES and p.suffix == ".png"):
        src = quote((Path(group_dir.name) / FIGURES / path.name).as_posix())
        shown.append(f'<figure><a href="{src}"><img src="{src}" alt="{html.escape(path.stem)}" loading="lazy"></a>'
                     f"<figcaption>{html.escape(path.stem)}</figcaption></figure>")
    return f'<div class="figures">{"".join(shown)}</div>' if shown else ""


def notebook_links(group_dir: Path, skipped: Skipped) -> str:
    """The group's notebooks in a line; the runs' in a list that stays folded; none that was skipped."""
    found = [p for p in record_files(group_dir) if p.suffix == ".ipynb" and p not in skipped]
    group = [site_link(group_dir, p, p.stem, ".html") for p in found if p.parent == group_dir]
    runs = [f"<li>{site_link(group_dir, p, p.relative_to(group_dir).as_posix(), '.html')}</li>"
            for p in found if p.parent != group_dir]
    parts = [f"<p>Notebooks: {' · '.join(group)}</p>" if group else "",
             f"<details><summary>Training notebooks ({len(runs)})</summary>\n<ul>\n" + "\n".join(runs)
             + "\n</ul>\n</details>" if runs else ""]
    return "\n".join(part for part in parts if part)


def file_links(group_dir: Path, skipped: Skipped) -> str:
    """Tables as pages (but one skipped), then every copied file as it is in the record."""
    copied = [p for p in record_files(group_dir) if p.suffix != ".ipynb"]
    tables = [site_link(group_dir, p, p.stem, ".html") for p in copied if p.suffix == ".md" and p not in skipped]
    files = [site_link(group_dir, p, p.relative_to(group_dir).as_posix()) for p in copied]
    return "\n".join([f"<p>Tables: {' · '.join(tables)}</p>" if tables else "", f"<p>Files: {' · '.join(files)}</p>"])
