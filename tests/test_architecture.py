"""The layout the architecture document promises (docs/architecture.md), checked on the source.

* imports between the layers of ``recoilsim/`` point one way only, down this order:
  errors, kernels, model, stopping, io, analysis, plots, forward, fitting, workflows, cli
  (the package's ``__init__`` may be imported by anyone for ``__version__``);
* the kernels never import recoilsim (arrays in, arrays out);
* no private name (leading underscore) is imported from another module;
* no module outside ``kernels/`` over 500 lines, no class over 200 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "recoilsim"
ORDER = ["errors", "kernels", "model", "stopping", "stopping_data", "io", "analysis", "plots", "forward",
         "fitting", "workflows", "cli"]
MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 200


def _modules():
    for p in sorted(PKG.rglob("*.py")):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        yield p, parts, is_pkg


def _imports(path: Path, parts: list[str], is_pkg: bool):
    """(target module parts, imported name) of every ``from ... import`` inside recoilsim."""
    pkg = parts if is_pkg else parts[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - (node.level - 1)]
                tgt = base + (node.module.split(".") if node.module else [])
            else:
                tgt = (node.module or "").split(".")
            if tgt[0] == "recoilsim":
                for a in node.names:
                    yield tgt, a.name
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "recoilsim":
                    yield a.name.split("."), None


def _layer(parts: list[str]) -> str | None:
    return parts[1] if len(parts) > 1 else None


def test_imports_point_down_the_layers():
    wrong = []
    for path, parts, is_pkg in _modules():
        here = _layer(parts)
        if here is None:  # recoilsim/__init__.py: the lazy top-level API may name anything
            continue
        for tgt, name in _imports(path, parts, is_pkg):
            there = _layer(tgt)
            if there is None and name is not None and (PKG / f"{name}.py").exists():
                there = name  # from recoilsim import errors
            if there is None or there == here:
                continue
            if ORDER.index(there.removesuffix(".py")) > ORDER.index(here.removesuffix(".py")):
                wrong.append(f"{'.'.join(parts)} imports {'.'.join(tgt)} ({here} -> {there})")
    assert not wrong, "upward imports:\n" + "\n".join(wrong)


def test_kernels_never_import_recoilsim():
    for p in sorted((ROOT / "kernels").glob("*.py")):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level <= 1 and not (node.module or "").startswith("recoilsim"), p.name
            if isinstance(node, ast.Import):
                assert all(not a.name.startswith("recoilsim") for a in node.names), p.name


def test_no_private_names_imported_across_modules():
    found = [f"{'.'.join(parts)}: {'.'.join(tgt)}.{name}"
             for path, parts, is_pkg in _modules()
             for tgt, name in _imports(path, parts, is_pkg)
             if name and name.startswith("_") and not name.startswith("__")]
    assert not found, found


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: str(p.relative_to(PKG)))
def test_module_and_class_sizes(path):
    text = path.read_text()
    n = text.count("\n")
    assert n <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)}: {n} lines (at most {MAX_MODULE_LINES})"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            size = node.end_lineno - node.lineno + 1
            assert size <= MAX_CLASS_LINES, f"class {node.name} in {path.name}: {size} lines"
