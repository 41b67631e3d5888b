"""Files stay short enough to read in one sitting, and the docs stay short and linked: every Python
file under src/, bench/ and test/ at most 300 lines and every function at most 60, unless
test/size_exceptions.toml names it with the reason; README.md at most 100 lines; every relative
link in README.md and docs/*.md leads to an existing file (and heading, where it names one)."""
import ast
import re
import tomllib

from source_tree import REPO

MAX_FILE_LINES = 300
MAX_FUNCTION_LINES = 60
MAX_README_LINES = 100
EXCEPTIONS = REPO / "test" / "size_exceptions.toml"


def python_files():
    for folder in ("src", "bench", "test"):
        yield from sorted((REPO / folder).rglob("*.py"))


def size_exceptions(table):
    """``table`` of size_exceptions.toml: name -> reason, every reason given."""
    with EXCEPTIONS.open("rb") as f:
        named = tomllib.load(f).get(table)
    assert isinstance(named, dict), "%s has no [%s] table" % (EXCEPTIONS.name, table)
    blank = sorted(name for name, why in named.items() if not isinstance(why, str) or not why.strip())
    assert not blank, "%s [%s]: say why for %s" % (EXCEPTIONS.name, table, blank)
    return named


def long_functions():
    """``stem.function`` -> lines, for every function over the limit."""
    found = {}
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                key = "%s.%s" % (path.stem, node.name)
                if length > MAX_FUNCTION_LINES:
                    found[key] = max(length, found.get(key, 0))
    return found


def test_long_files_are_named_in_size_exceptions():
    named = size_exceptions("files")
    lines = {}
    for path in python_files():
        lines[path.name] = max(lines.get(path.name, 0), sum(1 for _ in path.open()))
    unnamed = sorted("%s (%d lines)" % (name, n) for name, n in lines.items()
                     if n > MAX_FILE_LINES and name not in named)
    assert not unnamed, "over %d lines, not in %s [files]: %s" % (
        MAX_FILE_LINES, EXCEPTIONS.name, unnamed)
    stale = sorted(name for name in named if lines.get(name, 0) <= MAX_FILE_LINES)
    assert not stale, "in %s [files] but no such file is over %d lines: %s" % (
        EXCEPTIONS.name, MAX_FILE_LINES, stale)


def test_long_functions_are_named_in_size_exceptions():
    named = size_exceptions("functions")
    found = long_functions()
    unnamed = sorted("%s (%d lines)" % (key, n) for key, n in found.items() if key not in named)
    assert not unnamed, "over %d lines, not in %s [functions]: %s" % (
        MAX_FUNCTION_LINES, EXCEPTIONS.name, unnamed)
    stale = sorted(key for key in named if key not in found)
    assert not stale, "in %s [functions] but no such function is over %d lines: %s" % (
        EXCEPTIONS.name, MAX_FUNCTION_LINES, stale)


def test_readme_reads_in_two_minutes():
    n = len((REPO / "README.md").read_text().splitlines())
    assert n <= MAX_README_LINES, "README.md has %d lines (at most %d): move detail into docs/" % (
        n, MAX_README_LINES)


FENCE = re.compile(r"^\s*(```|~~~)")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def outside_code(text):
    """The lines of a markdown text outside fenced code blocks."""
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            yield line


def anchors(path):
    """GitHub's heading anchors of a markdown file: the heading's text in lower case, punctuation
    but hyphens and underscores dropped, spaces to hyphens, repeats numbered."""
    seen, result = {}, set()
    for line in outside_code(path.read_text()):
        if not re.match(r"^#{1,6}\s", line):
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line.lstrip("#").strip())
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        result.add(slug if n == 0 else "%s-%d" % (slug, n))
    return result


def test_relative_links_in_the_docs_resolve():
    broken = []
    for doc in [REPO / "README.md"] + sorted((REPO / "docs").glob("*.md")):
        for line in outside_code(doc.read_text()):
            for target in LINK.findall(re.sub(r"`+[^`]*`+", "", line)):  # not in inline code
                if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, mailto: ...
                    continue
                file_part, _, anchor = target.partition("#")
                path = (doc.parent / file_part).resolve() if file_part else doc
                where = "%s: %s" % (doc.relative_to(REPO), target)
                if not path.exists():
                    broken.append(where + " (no such file)")
                elif anchor and path.suffix == ".md" and anchor.lower() not in anchors(path):
                    broken.append(where + " (no such heading)")
    assert not broken, broken
