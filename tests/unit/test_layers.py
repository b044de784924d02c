"""Architecture tests: the package's layers (docs/design.md section 2) as code.

A unit is a top-level module (`ocrd/errors.py`) or a sub-package (`ocrd/engine/`). A unit imports
only itself and units of lower layers; units of one layer are siblings that never import each
other. Each third-party library has one owning unit, named in that unit's docstring. Modules form no
import circle, no module is past the size a reader can hold, and a sub-package's `__init__` holds
its docstring only (no re-exports: an import names the module that defines the name).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ocrd

PACKAGE_DIR = Path(ocrd.__file__).parent

# docs/design.md section 2. A new top-level module or sub-package must be placed here first.
LAYERS: dict[str, int] = {
    "__init__": 0,  # the version string
    "errors": 0,
    "logs": 1,
    "durable": 1,
    "cpus": 1,
    "config": 2,
    "engine": 3,
    "intake": 3,
    "inbox": 3,
    "jobs": 3,
    "outputs": 4,
    "service": 5,
    "http": 6,  # above the service: it hands uploads to the daemon's loop; the CLI wires it in
    "cluster": 6,  # the Dask executor: builds on the service's job function and Executor protocol; the CLI wires it in
    "cli": 7,
    "__main__": 8,
}

# Third-party top-level package -> the one unit allowed to import it.
OWNERS: dict[str, str] = {
    "yaml": "config",
    "onnxruntime": "engine",
    "onnx": "engine",
    "pyclipper": "engine",
    "structlog": "logs",
    "pebble": "service",
    "pypdfium2": "intake",
    "sqlite_utils": "jobs",
    "watchdog": "inbox",
    "prometheus_client": "service",
    "starlette": "http",
    "uvicorn": "http",
    "python_multipart": "http",
    "pikepdf": "outputs",
    "fontTools": "outputs",
    "distributed": "cluster",
    "dask": "cluster",
}
# OpenCV is the pixel toolkit of the three packages that work on pixels: intake decodes untrusted
# bytes with it (the only one that may, behind the decoder limits), the engine resizes, crops and
# finds contours, outputs draws and encodes. NumPy is the array type every layer passes around and
# is not checked.
SHARED_PIXEL_LIBRARIES: dict[str, tuple[str, ...]] = {"cv2": ("engine", "intake", "outputs")}

MAX_TOP_LEVEL_MODULES = 10
MAX_MODULE_LINES = 400


def module_paths() -> list[Path]:
    return sorted(PACKAGE_DIR.rglob("*.py"))


def dotted(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR).with_suffix("").parts)
    return ".".join(["ocrd", *parts])


def unit_of(path: Path) -> str:
    return path.relative_to(PACKAGE_DIR).with_suffix("").parts[0]


def imports_of(path: Path) -> list[tuple[str, int]]:
    """Every import in the module's source, at any depth (function bodies, TYPE_CHECKING blocks):
    (absolute dotted target, line). `from X import y` yields `X.y` for each name, so a
    sub-module imported by name is seen as that module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = dotted(path).rsplit(".", 1)[0] if path.name != "__init__.py" else dotted(path.parent / "x.py").rsplit(".", 1)[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] == "ocrd":
                found.extend((f"{base}.{alias.name}", node.lineno) for alias in node.names)
            else:
                found.append((base, node.lineno))
    return found


def internal_module(name: str) -> str | None:
    """The ocrd module (dotted) an import refers to, or None for a third-party/stdlib import.
    `ocrd.engine.detect.TextDetector` -> `ocrd.engine.detect`; `ocrd.__version__` -> `ocrd`."""
    parts = name.split(".")
    if parts[0] != "ocrd":
        return None
    for end in range(len(parts), 1, -1):
        candidate = PACKAGE_DIR.joinpath(*parts[1:end])
        if candidate.with_suffix(".py").is_file():
            return ".".join(parts[:end])
        if (candidate / "__init__.py").is_file():
            return ".".join(parts[:end])
    return "ocrd"


def unit_of_module(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_the_walk_finds_the_package():
    units = {unit_of(p) for p in module_paths()}
    assert {"errors", "engine", "cli", "service", "jobs"} <= units
    detect = PACKAGE_DIR / "engine" / "detect.py"
    assert "ocrd.engine.models" in {internal_module(t) for t, _ in imports_of(detect)}
    # Function-level imports are seen too: workers imports the engine inside its initializer.
    workers = PACKAGE_DIR / "service" / "workers.py"
    assert "ocrd.engine.ocr_engine" in {internal_module(t) for t, _ in imports_of(workers)}


@pytest.mark.parametrize("unit", sorted({unit_of(p) for p in module_paths()}))
def test_unit_is_placed_in_the_layer_table(unit):
    assert unit in LAYERS, f"ocrd/{unit} is not in the layer table: add it to docs/design.md section 2 and to LAYERS here"


def test_imports_only_point_down():
    upward = []
    for path in module_paths():
        own_unit = unit_of(path)
        own = LAYERS.get(own_unit)
        if own is None:
            continue  # reported by test_unit_is_placed_in_the_layer_table
        for name, line in imports_of(path):
            target = internal_module(name)
            if target is None:
                continue
            target_unit = unit_of_module(target)
            if target_unit == own_unit:
                continue
            target_layer = LAYERS.get(target_unit)
            if target_layer is None or target_layer >= own:
                where = path.relative_to(PACKAGE_DIR.parent)
                upward.append(f"{where}:{line} ({own_unit}, layer {own}) imports {target} ({target_unit}, layer {target_layer})")
    assert not upward, "imports that do not point down the layer table:\n" + "\n".join(upward)


def test_third_party_libraries_are_imported_only_by_their_owner():
    trespass = []
    for path in module_paths():
        unit = unit_of(path)
        for name, line in imports_of(path):
            top = name.split(".")[0]
            allowed = (OWNERS[top],) if top in OWNERS else SHARED_PIXEL_LIBRARIES.get(top)
            if allowed is not None and unit not in allowed:
                where = path.relative_to(PACKAGE_DIR.parent)
                trespass.append(f"{where}:{line} imports {top}, owned by {'/'.join(allowed)}")
    assert not trespass, "\n".join(trespass)


def test_each_owner_says_which_library_it_owns():
    unsaid = []
    for library, unit in OWNERS.items():
        init = PACKAGE_DIR / unit / "__init__.py"
        source = init if init.is_file() else PACKAGE_DIR / f"{unit}.py"
        doc = ast.get_docstring(ast.parse(source.read_text(encoding="utf-8"))) or ""
        if f"`{library}`" not in doc:
            unsaid.append(f"{source.relative_to(PACKAGE_DIR.parent)} does not name `{library}` in its docstring")
    assert not unsaid, "\n".join(unsaid)


def test_no_import_circle():
    graph: dict[str, set[str]] = {}
    for path in module_paths():
        here = dotted(path).removesuffix(".__init__")
        targets = {internal_module(name) for name, _ in imports_of(path)}
        graph[here] = {t for t in targets if t is not None and t != here and t != "ocrd"}
    circles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                circles.append(" -> ".join([*trail[trail.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_sub_packages_say_what_they_own_and_re_export_nothing():
    problems = []
    for init in sorted(PACKAGE_DIR.rglob("__init__.py")):
        if init.parent == PACKAGE_DIR:
            continue
        tree = ast.parse(init.read_text(encoding="utf-8"))
        doc = ast.get_docstring(tree) or ""
        where = init.relative_to(PACKAGE_DIR.parent)
        if len(doc.split()) < 8:
            problems.append(f"{where}: no docstring saying what the package holds")
        if "may import" not in doc:
            problems.append(f"{where}: the docstring does not say what the package may import")
        body = [node for node in tree.body if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
        if body:
            problems.append(f"{where}: holds code (line {body[0].lineno}); import from the defining module instead")
    assert not problems, "\n".join(problems)


def test_modules_stay_small_and_the_top_level_stays_short():
    long = [f"{p.relative_to(PACKAGE_DIR.parent)}: {n} lines" for p in module_paths()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES]
    assert not long, f"modules past {MAX_MODULE_LINES} lines (split by what each part owns):\n" + "\n".join(long)
    top = sorted(p.name for p in PACKAGE_DIR.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, f"ocrd/ holds {len(top)} modules of its own: {top}"


def _fake_tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "ocrd"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_checker_catches_an_upward_import(tmp_path, monkeypatch):
    # The checks above cannot pass silently: a deliberately bad tree is caught by each of them.
    fake = _fake_tree(tmp_path, {
        "__init__.py": "",
        "errors.py": "",
        "engine/__init__.py": '"""The engine."""\n',
        "engine/detect.py": "def f():\n    from ocrd.service.workers import WorkerPool\n    import pebble\n",
        "engine/a.py": "from ocrd.engine import b\n",
        "engine/b.py": "from ocrd.engine.a import x\n",
        "intake/__init__.py": '"""Intake, which may import config."""\nfrom ocrd.intake.gate import open_document\n',
        "intake/gate.py": "from ocrd.inbox.watch import Watcher\n",
        "inbox/__init__.py": '"""Inbox: watching folders; it may import config and owns `watchdog`."""\n',
        "inbox/watch.py": "",
        "service/__init__.py": '"""Service wiring: it may import everything below; owns `pebble`."""\n',
        "service/workers.py": "",
    })
    monkeypatch.setitem(globals(), "PACKAGE_DIR", fake)
    with pytest.raises(AssertionError, match=r"ocrd/engine/detect\.py:2 \(engine, layer 3\) imports ocrd\.service\.workers \(service, layer 5\)"):
        test_imports_only_point_down()
    with pytest.raises(AssertionError, match=r"ocrd/intake/gate\.py:1 \(intake, layer 3\) imports ocrd\.inbox\.watch \(inbox, layer 3\)"):
        test_imports_only_point_down()
    with pytest.raises(AssertionError, match=r"ocrd/engine/detect\.py:3 imports pebble, owned by service"):
        test_third_party_libraries_are_imported_only_by_their_owner()
    with pytest.raises(AssertionError, match=r"ocrd\.engine\.a -> ocrd\.engine\.b -> ocrd\.engine\.a"):
        test_no_import_circle()
    with pytest.raises(AssertionError, match=r"ocrd/engine/__init__\.py: no docstring") as caught:
        test_sub_packages_say_what_they_own_and_re_export_nothing()
    assert "ocrd/intake/__init__.py: holds code (line 2)" in str(caught.value)
