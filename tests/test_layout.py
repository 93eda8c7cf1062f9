"""The package's shape: the core in reading order, the rings around it, no cycles, imports at the top.

The package docstring lists the core modules in reading order; each may import only modules listed
above it. The rings (subpackages) import the core and each other, never the other way; `__main__`,
the command line, is the one core module that imports the rings (it adds their commands).
"""

import ast
import re
from pathlib import Path

import vgpt

PACKAGE = Path(vgpt.__file__).parent
# run inside the grader's sandbox, where a student's code sees only the runner's view of vgpt: a call that
# needs the package's stages (a capstone's) imports them when it runs, in a sandbox that holds them
SANDBOXED = {"course.exercises.calls"}
CORE_BUDGET = 2_750  # lines of the core, docstrings and comments included: what a student reads in an evening


def core_order() -> list[str]:
    """The core modules as the package docstring lists them, in its order."""
    listing = vgpt.__doc__.split("The core, in reading order")[1].split("The rings")[0]
    return re.findall(r"^    (\w+) ", listing, re.M)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(p for p in parts if p != "__init__") or "__init__"


def imports_of(path: Path) -> list[tuple[str, bool]]:
    """The vgpt modules `path` imports, each with whether the import sits at the module's top level."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    package = module_name(path).split(".")[:-1] if path.name != "__init__.py" else module_name(path).split(".")
    package = [p for p in package if p != "__init__"]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            target = ".".join([*base, node.module] if node.module else base)
            names = [target] if node.module else [".".join([*base, a.name]) for a in node.names]
            found += [(name.strip("."), id(node) in top) for name in names]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [(m.removeprefix("vgpt."), id(node) in top) for m in modules if m.startswith("vgpt.")]
    return found


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def resolve(name: str, modules: dict) -> str:
    """`from . import features` names a module; `from .features import x` too: the module either way."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name


def test_the_docstring_lists_every_core_module_once():
    listed = core_order()
    files = sorted(p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert sorted(listed) == files, "the package docstring and the core's files disagree"
    assert len(listed) == len(set(listed))


def test_each_core_module_imports_only_modules_listed_above_it():
    order, modules = core_order(), all_modules()
    for position, name in enumerate(order):
        if name == "__main__":
            continue
        for target, _ in imports_of(PACKAGE / f"{name}.py"):
            target = resolve(target, modules).split(".")[0]
            if target in ("", "__init__"):
                continue
            assert target in order, f"core module {name} imports the ring {target}"
            assert order.index(target) < position, f"{name} imports {target}, listed below it"


def test_no_cycles_between_modules():
    modules = all_modules()
    graph = {
        name: {resolve(t, modules) for t, _ in imports_of(path)} - {name, "", "__init__"}
        for name, path in modules.items()
    }
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail, node, nxt]))
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


def test_no_vgpt_module_is_imported_inside_a_function():
    """Only the command line waits: `__main__` and the rings' `commands` modules define parsers, and each
    handler imports its job when it runs, so that --help does not load torch, transformers and peft."""
    late = [
        (name, target)
        for name, path in all_modules().items()
        for target, top in imports_of(path)
        if not top and name != "__main__" and not name.endswith("commands") and name not in SANDBOXED
    ]
    assert late == [], f"imports of vgpt modules inside functions: {late}"


def test_the_core_stays_small_enough_to_read():
    lines = sum(len((PACKAGE / f"{name}.py").read_text().splitlines()) for name in core_order())
    assert lines <= CORE_BUDGET, f"the core has grown to {lines} lines (budget {CORE_BUDGET})"


def test_negative_control_an_upward_import_is_caught(tmp_path, monkeypatch):
    """The checks above can fail: a core module importing a ring is named."""
    fake = tmp_path / "vgpt"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        '"""x\n\nThe core, in reading order:\n\n    a   one\n    b   two\n\nThe rings\n"""\n'
    )
    (fake / "a.py").write_text("from .world import shapes\n")
    (fake / "world").mkdir()
    (fake / "world" / "__init__.py").write_text("")
    (fake / "world" / "shapes.py").write_text("")
    (fake / "b.py").write_text("from . import a\n")
    monkeypatch.setattr(vgpt, "__doc__", (fake / "__init__.py").read_text())
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    try:
        test_each_core_module_imports_only_modules_listed_above_it()
    except AssertionError as err:
        assert "core module a imports the ring world" in str(err)
    else:
        raise AssertionError("an upward import went unnoticed")
