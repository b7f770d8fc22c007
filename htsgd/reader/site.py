"""The record as static HTML: `htsgd site` renders every group under results/ into one folder of plain pages.

Not every reader of a record has Jupyter. The site needs nothing but a browser: each executed notebook
becomes a page (nbconvert's `basic` template, its images embedded, no script or font from anywhere), and
the group's CSVs, tables and figures are copied beside the pages, at the paths they have in the record, so
that every link is relative and the folder can be opened from disk or served by any static server. A
group is rebuilt only when what it shows changed: the digest of its inputs is kept in `<out>/<group>/.built`.
"""

import csv
import functools
import html
import os
import shutil
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import yaml
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import markdown2html_mistune
from pygments.formatters import HtmlFormatter

from ..errors import UserError
from ..record import storage
from ..record.digests import digest, file_digest
from ..record.names import FAILED_NOTEBOOK, FIGURES, NOTEBOOK, PROVENANCE, RUNS_CSV, SUMMARY, TABLES, VERDICT_MD
from ..record.public_paths import public_path

BUILT = ".built"
INDEX = "index.html"
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


def site_command(results_dir, out, params_dir) -> int:
    """`htsgd site`: build, then say which groups were rebuilt and which were up to date."""
    outcomes = build_site(results_dir, out, params_dir)
    for outcome in (REBUILT, UP_TO_DATE, REMOVED):
        names = [group for group, done in outcomes.items() if done == outcome]
        if names:
            print(f"{outcome}: {', '.join(names)}")
    print(f"open {public_path(Path(out) / INDEX)}")
    return 0


def build_site(results_dir, out, params_dir) -> dict[str, str]:
    """Render every group of `results_dir` into `out`; each group's outcome: rebuilt, up to date or removed."""
    results_dir, out, params_dir = Path(results_dir), Path(out), Path(params_dir)
    if not results_dir.is_dir():
        raise UserError(f"{public_path(results_dir)} is not a folder: nothing to render")
    groups = find_groups(results_dir, out)
    outcomes = {group.name: update_group(group, out / group.name, params_dir / f"{group.name}.yaml")
                for group in groups}
    outcomes.update({folder.name: REMOVED for folder in remove_gone(out, {group.name for group in groups})})
    sections = "\n".join(group_section(group, params_dir / f"{group.name}.yaml") for group in groups)
    storage.write_text(out / INDEX, page("htsgd: the record", index_body(groups, sections)))
    return outcomes


def find_groups(results_dir: Path, out: Path) -> list[Path]:
    """Every folder holding a group's `runs.csv`; the site's own folder is never one."""
    return sorted(p for p in results_dir.iterdir()
                  if (p / RUNS_CSV).is_file() and p.resolve() != out.resolve())


def record_files(group_dir: Path) -> list[Path]:
    """What the site shows of a group: these files are copied (notebooks rendered), and only they decide a rebuild."""
    files = [group_dir / RUNS_CSV, group_dir / PROVENANCE]
    files += [p for folder in (SUMMARY, TABLES, FIGURES) for p in sorted((group_dir / folder).glob("*"))]
    return [p for p in files if p.is_file()] + notebooks(group_dir)


def notebooks(group_dir: Path) -> list[Path]:
    """The group's executed notebooks, then each run's; one still executing (`.running.ipynb`) is not record yet."""
    group = sorted(p for p in group_dir.glob("*.ipynb") if not p.name.endswith(".running.ipynb"))
    return group + sorted(p for name in (NOTEBOOK, FAILED_NOTEBOOK) for p in group_dir.glob(f"*/{name}"))


def inputs_digest(group_dir: Path, params_path: Path) -> str:
    """The record files, the params file (the description) and this module: a change to any of them rebuilds."""
    return digest({"record": {p.relative_to(group_dir).as_posix(): file_digest(p) for p in record_files(group_dir)},
                   "params": file_digest(params_path) if params_path.is_file() else None,
                   "site": file_digest(__file__)})


def update_group(group_dir: Path, site_dir: Path, params_path: Path) -> str:
    """Rebuild the group's pages from scratch unless `.built` holds the digest of its current inputs."""
    wanted = inputs_digest(group_dir, params_path)
    if (site_dir / BUILT).is_file() and (site_dir / BUILT).read_text() == wanted:
        return UP_TO_DATE
    shutil.rmtree(site_dir, ignore_errors=True)
    for path in record_files(group_dir):
        publish(path, site_dir / path.relative_to(group_dir), site_dir.parent / INDEX)
    storage.write_text(site_dir / BUILT, wanted)  # last: a build cut short is redone
    return REBUILT


def remove_gone(out: Path, groups: set[str]) -> list[Path]:
    """Remove the pages of groups whose record is gone; only folders this module built (they hold `.built`)."""
    gone = sorted(p for p in out.glob(f"*/{BUILT}") if p.parent.name not in groups) if out.is_dir() else []
    for built in gone:
        shutil.rmtree(built.parent)
    return [built.parent for built in gone]


def publish(source: Path, target: Path, index: Path):
    """A notebook becomes `<name>.html`; any other file is copied, and a Markdown table also gets a page."""
    target.parent.mkdir(parents=True, exist_ok=True)
    home = link(index, target.parent)
    if source.suffix == ".ipynb":
        body, _ = exporter().from_filename(str(source))
        storage.write_text(target.with_suffix(".html"), page(target.name, body, home, notebook=True))
        return
    shutil.copyfile(source, target)
    if source.suffix == ".md":
        storage.write_text(target.with_suffix(".html"), page(source.name, markdown2html_mistune(source.read_text()), home))


@functools.cache
def exporter() -> HTMLExporter:
    """nbconvert's `basic` template: the cells alone, no require.js or MathJax from a CDN; images inline."""
    return HTMLExporter(template_name="basic", embed_images=True)


def page(title: str, body: str, home: str | None = None, notebook: bool = False) -> str:
    """A whole page: its own inline style (and syntax colours for a notebook), nothing loaded from elsewhere."""
    style = CSS + (HtmlFormatter().get_style_defs(".highlight") if notebook else "")
    back = f'<p><a href="{home}">&larr; every group</a></p>\n' if home else ""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
            f"<style>{style}</style>\n</head>\n<body>\n{back}{body}\n</body>\n</html>\n")


def link(path: Path, start: Path) -> str:
    """`path` as a relative URL from a page in folder `start`."""
    return quote(Path(os.path.relpath(path, start)).as_posix())


def index_body(groups: list[Path], sections: str) -> str:
    if not groups:
        return '<h1>htsgd: the record</h1>\n<p class="none">No group record (no folder with a runs.csv) yet.</p>'
    contents = " · ".join(f'<a href="#{quote(g.name)}">{html.escape(g.name)}</a>' for g in groups)
    return f"<h1>htsgd: the record</h1>\n<p>Groups: {contents}</p>\n{sections}"


def group_section(group_dir: Path, params_path: Path) -> str:
    """A group on the index: what it is, its verdict, how its runs ended, its figures and links to the rest."""
    name = group_dir.name
    parts = [f'<section id="{html.escape(name)}">\n<h2>{html.escape(name)}</h2>',
             paragraph(description(params_path), "description", f"No description ({public_path(params_path)} "
                       "not found or without one)."),
             paragraph(verdict_sentence(group_dir), "verdict", "No verdict yet (the report has not run)."),
             paragraph(status_counts(group_dir), "runs", "No run in runs.csv."),
             figures(group_dir), notebook_links(group_dir), file_links(group_dir), "</section>"]
    return "\n".join(part for part in parts if part)


def paragraph(text: str | None, kind: str, missing: str) -> str:
    if text is None:
        return f'<p class="{kind} none">{html.escape(missing)}</p>'
    shown = f"<strong>{html.escape(text)}</strong>" if kind == "verdict" else html.escape(text)
    return f'<p class="{kind}">{shown}</p>'


def description(params_path: Path) -> str | None:
    params = yaml.safe_load(params_path.read_text()) if params_path.is_file() else None
    text = params.get("description") if isinstance(params, dict) else None
    return " ".join(str(text).split()) if text else None


def verdict_sentence(group_dir: Path) -> str | None:
    """The bold sentence of tables/verdict.md: what the group found, in one line."""
    path = group_dir / TABLES / VERDICT_MD
    lines = path.read_text().splitlines() if path.is_file() else []
    return next((line[2:].split("**", 1)[0] for line in lines if line.startswith("**")), None)


def status_counts(group_dir: Path) -> str | None:
    """`36 runs: 30 converged, 6 failed`, from runs.csv's status column."""
    with open(group_dir / RUNS_CSV, newline="") as f:
        counts = Counter(row["status"] for row in csv.DictReader(f))
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
    for path in sorted((group_dir / FIGURES).glob("*.png")):
        src = quote((Path(group_dir.name) / FIGURES / path.name).as_posix())
        shown.append(f'<figure><a href="{src}"><img src="{src}" alt="{html.escape(path.stem)}" loading="lazy"></a>'
                     f"<figcaption>{html.escape(path.stem)}</figcaption></figure>")
    return f'<div class="figures">{"".join(shown)}</div>' if shown else ""


def notebook_links(group_dir: Path) -> str:
    """The group's notebooks in a line; the runs' in a list that stays folded."""
    found = notebooks(group_dir)
    group = [site_link(group_dir, p, p.stem, ".html") for p in found if p.parent == group_dir]
    runs = [f"<li>{site_link(group_dir, p, p.relative_to(group_dir).as_posix(), '.html')}</li>"
            for p in found if p.parent != group_dir]
    parts = [f"<p>Notebooks: {' · '.join(group)}</p>" if group else "",
             f"<details><summary>Training notebooks ({len(runs)})</summary>\n<ul>\n" + "\n".join(runs)
             + "\n</ul>\n</details>" if runs else ""]
    return "\n".join(part for part in parts if part)


def file_links(group_dir: Path) -> str:
    """Tables as pages, then every copied file as it is in the record."""
    copied = [p for p in record_files(group_dir) if p.suffix != ".ipynb"]
    tables = [site_link(group_dir, p, p.stem, ".html") for p in copied if p.suffix == ".md"]
    files = [site_link(group_dir, p, p.relative_to(group_dir).as_posix()) for p in copied]
    return "\n".join([f"<p>Tables: {' · '.join(tables)}</p>" if tables else "", f"<p>Files: {' · '.join(files)}</p>"])
