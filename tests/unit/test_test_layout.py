"""The test tree's layout: tests and benches share helpers through tests/support, never by importing a
conftest or another test module (pytest would then collect or set up a module twice, and a fixture file
would grow into a library); and a conftest defines only fixtures and pytest hooks."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def sources(*folders: str) -> list[Path]:
    """The Python files under `folders`, without the client suites' installed packages (.venv,
    node_modules) or caches."""
    return sorted(
        path
        for folder in folders
        for path in (ROOT / folder).rglob("*.py")
        if not any(part.startswith(".") or part == "node_modules" for part in path.relative_to(ROOT).parts)
    )


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """Each module `path` imports, with its line; a relative import as its dots and name."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield node.lineno, "." * node.level + (node.module or "")


def shares_wrongly(module: str) -> bool:
    """Whether importing `module` reaches into the test tree other than through tests/support."""
    if module == "tests.support" or module.startswith("tests.support."):
        return False
    last = module.rsplit(".", 1)[-1]
    return (
        module.startswith(("tests.", "."))
        or module == "tests"
        or last == "conftest"
        or last.startswith("test_")
    )


def test_tests_and_benches_import_nothing_of_the_test_tree_but_tests_support() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sources("tests", "bench")
        for line, module in imports(path)
        if shares_wrongly(module)
    ]

    assert wrong == [], "move what is shared to tests/support and import it from there"


def is_fixture(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if (isinstance(target, ast.Attribute) and target.attr == "fixture") or (
            isinstance(target, ast.Name) and target.id == "fixture"
        ):
            return True
    return False


def test_conftests_define_only_fixtures_and_hooks() -> None:
    conftests = [path for path in sources("tests") if path.name == "conftest.py"]
    wrong = []
    for path in conftests:
        for node in ast.parse(path.read_text(), str(path)).body:
            if isinstance(node, ast.ClassDef) or (
                isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                and not (is_fixture(node) or node.name.startswith("pytest_"))
            ):
                wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} defines {node.name}")

    assert len(conftests) >= 4, "the test tree's conftests are found"
    assert wrong == [], "helpers belong in tests/support; a conftest defines fixtures that use them"
