"""The package's shape, read from its source: imports flow one way with no cycle, the project's own
modules are imported at the top of a file (a function-local one says why), and every error tripwire
raises on purpose is a `TripwireError`. Each check is also run on a small broken package, so a check
that could not fail would show here."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import tripwire
from tripwire.errors import TripwireError

PACKAGE = Path(tripwire.__file__).parent
# each room may import only the rooms listed for it (and itself); the root modules serve every room
ROOMS = ("scenarios", "activations", "probes", "experiments", "cli")
ROOT_MODULES = {"tripwire", "tripwire.errors", "tripwire.strict_json", "tripwire._lazy"}
# exceptions that are control flow, never shown to a user: name -> why
NOT_USER_ERRORS = {"StopForward": "raised inside a forward to stop it after the last captured layer"}
REASON = "# reason:"


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported tripwire module
    line: int
    local: bool  # inside a function
    reason: bool  # a `# reason:` comment on the line above or on the import


def module_name(root: Path, path: Path, package: str) -> str:
    parts = (package, *path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def own_imports(root: Path, package: str) -> Iterator[Import]:
    """Every import of `package`'s modules in its source, except those under `if TYPE_CHECKING:`."""
    for path in sorted(root.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        name = module_name(root, path, package)

        def walk(node: ast.AST, local: bool, name: str = name, lines: list[str] = lines) -> Iterator[Import]:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.dump(child.test):
                    continue
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    targets = ([a.name for a in child.names] if isinstance(child, ast.Import)
                               else [child.module or ""] if child.level == 0 else [])
                    text = "\n".join(lines[max(0, child.lineno - 2):child.end_lineno])
                    for target in targets:
                        if target == package or target.startswith(package + "."):
                            yield Import(name, target, child.lineno, local, REASON in text)
                else:
                    yield from walk(child, local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

        yield from walk(ast.parse(source), False)


def cycles(imports: list[Import], modules: set[str]) -> list[list[str]]:
    """Strongly connected groups of more than one module in the graph of top-level imports."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for imp in imports:
        if not imp.local and imp.target in modules and imp.target != imp.module:
            graph[imp.module].add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def room(module: str) -> int | None:
    parts = module.split(".")
    return ROOMS.index(parts[1]) if len(parts) > 1 and parts[1] in ROOMS else None


def upward(imports: list[Import]) -> list[Import]:
    """Imports from a room into a later one (scenarios <- activations <- probes <- experiments <- cli)."""
    out = []
    for imp in imports:
        here, there = room(imp.module), room(imp.target)
        if here is not None and there is not None and there > here:
            out.append(imp)
    return out


def unexplained_local(imports: list[Import]) -> list[Import]:
    return [imp for imp in imports if imp.local and not imp.reason]


def modules_of(root: Path, package: str) -> set[str]:
    return {module_name(root, p, package) for p in root.rglob("*.py")}


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return list(own_imports(PACKAGE, "tripwire"))


def test_no_import_cycle(imports: list[Import]) -> None:
    assert cycles(imports, modules_of(PACKAGE, "tripwire")) == []


def test_imports_flow_one_way(imports: list[Import]) -> None:
    assert [f"{i.module}:{i.line} imports {i.target}" for i in upward(imports)] == []


def test_own_modules_are_imported_at_the_top(imports: list[Import]) -> None:
    """A function-local import of a tripwire module is allowed only with a one-line `# reason:`."""
    assert [f"{i.module}:{i.line} imports {i.target} inside a function" for i in unexplained_local(imports)] == []


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_the_import_checks_catch_a_broken_package(tmp_path: Path) -> None:
    pkg = _write(tmp_path, {
        "__init__.py": "",
        "scenarios/__init__.py": "",
        "scenarios/grid.py": "from pkg.probes.card import Card\n",  # upward
        "probes/__init__.py": "",
        "probes/card.py": "from pkg.probes.sweep import run\n",  # a cycle with sweep
        "probes/sweep.py": "from pkg.probes.card import Card\n\ndef run():\n    from pkg.scenarios import grid\n",
        "probes/ok.py": "def f():\n    # reason: breaks an optional dependency\n    from pkg.probes import sweep\n",
    })
    found = list(own_imports(pkg, "pkg"))
    assert cycles(found, modules_of(pkg, "pkg")) == [["pkg.probes.card", "pkg.probes.sweep"]]
    assert [(i.module, i.target) for i in upward(found)] == [("pkg.scenarios.grid", "pkg.probes.card")]
    assert [(i.module, i.target) for i in unexplained_local(found)] == [("pkg.probes.sweep", "pkg.scenarios")]


def error_classes(package: str) -> Iterator[type[BaseException]]:
    """Every exception class defined in `package`'s modules (each module imported); warnings are not
    errors (they are issued, never raised at a user)."""
    root = importlib.import_module(package)
    names = [package] + [m.name for m in pkgutil.walk_packages(root.__path__, package + ".")]
    for name in names:
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and not issubclass(cls, Warning) and cls.__module__ == name:
                yield cls


def not_tripwire_errors(package: str) -> list[str]:
    return sorted(f"{c.__module__}.{c.__name__}" for c in error_classes(package)
                  if not issubclass(c, TripwireError) and c.__name__ not in NOT_USER_ERRORS)


def test_every_project_error_is_a_tripwire_error() -> None:
    assert not_tripwire_errors("tripwire") == []


def test_the_error_check_catches_a_plain_value_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, {"__init__.py": "", "bad.py": "from tripwire.errors import TripwireError\n\n"
                      "class Fine(TripwireError, ValueError):\n    pass\n\nclass Stray(ValueError):\n    pass\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert not_tripwire_errors("pkg") == ["pkg.bad.Stray"]


def test_a_tripwire_error_prints_its_fix_and_keeps_its_builtin_base() -> None:
    from tripwire.errors import UsageError

    err = UsageError("store runs/x is locked", fix="wait for the other writer or remove its lock")
    assert isinstance(err, ValueError) and err.exit_code == 2
    assert err.user_message() == "store runs/x is locked\n  fix: wait for the other writer or remove its lock"
