"""Architecture tests: ocrd-internal imports only point down the layer table of DESIGN.md section 2,
and each third-party library is imported only by its owner module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ocrd

PACKAGE_DIR = Path(ocrd.__file__).parent

# DESIGN.md section 2. A new module must be placed here before the test passes.
# "__init__" (the package root, `from ocrd import __version__`) is not in the table;
# it holds only the version string, so it sits at the bottom with errors.
LAYERS: dict[str, int] = {
    "__init__": 0,
    "errors": 0,
    "config": 1,
    "results": 1,
    "geometry": 1,
    "logs": 1,
    "jobids": 1,
    "job": 1,
    "sdnotify": 1,
    "durable": 1,
    "allocator": 1,
    "cpus": 1,
    "intake": 2,
    "runtime": 2,
    "models": 2,
    "detect": 3,
    "classify": 3,
    "recognize": 3,
    "engine": 4,
    "outputs": 4,
    "joblog": 4,
    "inbox": 4,
    "workers": 5,
    "pipeline": 5,
    "int8": 5,
    "int8_build": 5,
    "daemon": 6,
    "requeue": 6,
    "check": 6,
    "health": 6,
    "cli": 7,
    "__main__": 7,
}
# Modules named `<prefix>_<part>` share the layer of their prefix (intake_headers, intake_pdf, inbox_..., outputs_vis).
LAYER_PREFIXES = ("intake", "inbox", "outputs")

# Third-party top-level package -> module-name prefixes allowed to import it.
OWNERS: dict[str, tuple[str, ...]] = {
    "yaml": ("config",),
    "onnxruntime": ("runtime", "int8_build"),  # int8_build: onnxruntime.quantization builds the INT8 copy
    "onnx": ("int8_build",),
    "pyclipper": ("geometry",),
    "structlog": ("logs",),
    "pebble": ("workers",),
    "pypdfium2": ("intake",),
    "sqlite_utils": ("joblog",),
    "watchdog": ("inbox",),
    "prometheus_client": ("health",),
}


def module_names() -> list[str]:
    return sorted(p.stem for p in PACKAGE_DIR.glob("*.py"))


def layer_of(module: str) -> int | None:
    if module in LAYERS:
        return LAYERS[module]
    for prefix in LAYER_PREFIXES:
        if module.startswith(prefix + "_"):
            return LAYERS[prefix]
    return None


def owner_matches(module: str, owners: tuple[str, ...]) -> bool:
    return any(module == owner or module.startswith(owner + "_") for owner in owners)


def imports_of(module: str) -> list[tuple[str, int]]:
    """Every import in the module's source, at any depth (function bodies, TYPE_CHECKING blocks):
    (absolute dotted target, line). `from ocrd import x` yields `ocrd.x` for each name."""
    path = PACKAGE_DIR / f"{module}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the flat ocrd package
                base = "ocrd" + (f".{node.module}" if node.module else "")
            else:
                base = node.module or ""
            if base == "ocrd":
                found.extend((f"ocrd.{alias.name}", node.lineno) for alias in node.names)
            else:
                found.append((base, node.lineno))
    return found


def internal_target(name: str) -> str | None:
    """The ocrd module an import refers to, or None for a third-party/stdlib import."""
    parts = name.split(".")
    if parts[0] != "ocrd":
        return None
    if len(parts) == 1:
        return "__init__"
    target = parts[1]
    # `from ocrd import __version__` names an attribute of the package root, not a module.
    return target if (PACKAGE_DIR / f"{target}.py").is_file() else "__init__"


def test_the_walk_finds_the_package():
    names = module_names()
    assert {"errors", "engine", "cli", "geometry"} <= set(names)
    assert any(t == "ocrd.models" for t, _ in imports_of("detect"))
    # Function-level imports are seen too: workers imports the engine inside its initializer.
    assert any(t == "ocrd.engine" for t, _ in imports_of("workers"))


@pytest.mark.parametrize("module", module_names())
def test_module_is_placed_in_the_layer_table(module):
    assert layer_of(module) is not None, (
        f"ocrd/{module}.py is not in the layer table: add it to DESIGN.md section 2 and to LAYERS here"
    )


def test_imports_only_point_down():
    upward = []
    for module in module_names():
        own = layer_of(module)
        if own is None:
            continue  # reported by test_module_is_placed_in_the_layer_table
        for name, line in imports_of(module):
            target = internal_target(name)
            if target is None or target == module:
                continue
            target_layer = layer_of(target)
            if target_layer is None or target_layer > own:
                upward.append(f"ocrd/{module}.py:{line} (layer {own}) imports {target} (layer {target_layer})")
    assert not upward, "imports pointing up the layer table:\n" + "\n".join(upward)


def test_third_party_libraries_are_imported_only_by_their_owner():
    trespass = []
    for module in module_names():
        for name, line in imports_of(module):
            top = name.split(".")[0]
            owners = OWNERS.get(top)
            if owners is not None and not owner_matches(module, owners):
                trespass.append(f"ocrd/{module}.py:{line} imports {top}, owned by {'/'.join(owners)}")
    assert not trespass, "\n".join(trespass)


def test_checker_catches_an_upward_import(tmp_path, monkeypatch):
    # The checks above cannot fail silently: a fake layer-1 module importing the engine is caught.
    fake_dir = tmp_path / "ocrd"
    fake_dir.mkdir()
    (fake_dir / "geometry.py").write_text("def f():\n    from ocrd.engine import OcrEngine\n    import pebble\n")
    (fake_dir / "engine.py").write_text("")
    monkeypatch.setitem(globals(), "PACKAGE_DIR", fake_dir)
    with pytest.raises(AssertionError, match=r"geometry\.py:2 \(layer 1\) imports engine \(layer 4\)"):
        test_imports_only_point_down()
    with pytest.raises(AssertionError, match=r"geometry\.py:3 imports pebble"):
        test_third_party_libraries_are_imported_only_by_their_owner()
