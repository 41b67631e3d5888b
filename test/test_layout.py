"""Files stay short enough to read in one sitting: every Python file under src/, bench/ and test/
at most 300 lines and every function at most 60, unless the README's layout section names it
(``Files over 300 lines, and why:`` / ``Functions over 60 lines, and why:``)."""
import ast
import re

from source_tree import REPO

MAX_FILE_LINES = 300
MAX_FUNCTION_LINES = 60


def python_files():
    for folder in ("src", "bench", "test"):
        yield from sorted((REPO / folder).rglob("*.py"))


def readme_exceptions(heading):
    """Names in backticks on the README line that starts with ``heading`` (and its wrapped
    continuation lines, up to the next list item)."""
    text = (REPO / "README.md").read_text()
    match = re.search(r"^- %s(.*?)(?=^- |^#|\Z)" % re.escape(heading), text, re.S | re.M)
    assert match, "README.md has no line starting with '- %s'" % heading
    return set(re.findall(r"`([^`]+)`", match.group(1)))


def test_long_files_are_named_in_the_readme():
    named = readme_exceptions("Files over 300 lines, and why:")
    long = {p.name: sum(1 for _ in p.open()) for p in python_files()}
    unnamed = sorted("%s (%d lines)" % (name, n) for name, n in long.items()
                     if n > MAX_FILE_LINES and name not in named)
    assert not unnamed, unnamed
    stale = sorted(n for n in named if n.endswith(".py") and long.get(n, 0) <= MAX_FILE_LINES)
    assert not stale, "named in the README but not over %d lines: %s" % (MAX_FILE_LINES, stale)


def test_long_functions_are_named_in_the_readme():
    named = readme_exceptions("Functions over 60 lines, and why:")
    found = []
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(("%s.%s" % (path.stem, node.name), length))
    unnamed = sorted("%s (%d lines)" % f for f in found if f[0] not in named)
    assert not unnamed, unnamed
