"""Import boundaries (issue 16 item 4 and item 3), checked on the source with ``ast``.

* No method module in ``experiments/`` imports another method module: what two methods share
  lives in ``jpose/`` or in a shared helper module of ``experiments/``.
* ``jpose/`` never imports ``experiments`` or ``ml_collections``: the library takes keyword
  options, and configs stay at the edge.

Every import statement counts, module-level or inside a function, and so does
``importlib.import_module("experiments.<name>")`` with a literal name.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
JPOSE = ROOT / "jpose"

METHOD_MODULES = {
    "baseline", "camerapose", "drover", "li", "wsp", "wsp_image", "zhou", "zhou_image",
}  # fmt: skip
# Harness, helper and command-line modules: they may import method modules.
SHARED_MODULES = {
    "__init__",
    "common",
    "configs",
    "lifting",
    "reproduce",
    "evaluate",
    "infer",
    "export",
}
# (importer, imported) pairs still allowed, each with its reason.
ALLOWED_METHOD_IMPORTS: set[tuple[str, str]] = set()
FORBIDDEN_IN_JPOSE = {"experiments", "ml_collections"}
# (file relative to jpose/, imported top-level package) allowed *inside a function* only.
ALLOWED_LAZY_IN_JPOSE: set[tuple[str, str]] = set()


def _imports(tree: ast.AST, *, package: str) -> list[tuple[str, bool]]:
    """``(absolute module name, inside a function)`` of every import in ``tree``; ``package`` is
    the importing module's package (for relative imports)."""
    out: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.Import):
            out.extend((a.name, in_function) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.append((module, in_function))
            # `from experiments import baseline` imports the submodule experiments.baseline
            out.extend((f"{module}.{a.name}", in_function) for a in node.names)
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            arg = node.args[0] if node.args else None
            if name == "import_module" and isinstance(arg, ast.Constant):
                if isinstance(arg.value, str):
                    out.append((arg.value, in_function))
        nested = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        for child in ast.iter_child_nodes(node):
            visit(child, nested)

    visit(tree, False)
    return out


def _experiment_modules() -> list[pathlib.Path]:
    return sorted(EXPERIMENTS.glob("*.py"))


def test_every_experiments_module_is_classified():
    """A new module of experiments/ must be declared a method or a shared module here."""
    names = {p.stem for p in _experiment_modules()} | {
        p.name for p in EXPERIMENTS.iterdir() if p.is_dir() and (p / "__init__.py").exists()
    }
    unknown = names - METHOD_MODULES - SHARED_MODULES
    assert not unknown, f"classify {sorted(unknown)} in tests/test_method_imports.py"
    assert METHOD_MODULES <= names, f"missing method modules {sorted(METHOD_MODULES - names)}"


@pytest.mark.parametrize("path", _experiment_modules(), ids=lambda p: p.stem)
def test_no_method_module_imports_another(path):
    if path.stem in SHARED_MODULES:
        pytest.skip("shared module: may import method modules")
    tree = ast.parse(path.read_text(), filename=str(path))
    imported = set()
    for module, _ in _imports(tree, package="experiments"):
        parts = module.split(".")
        if len(parts) >= 2 and parts[0] == "experiments" and parts[1] in METHOD_MODULES:
            imported.add(parts[1])
    imported -= {path.stem}
    bad = sorted(m for m in imported if (path.stem, m) not in ALLOWED_METHOD_IMPORTS)
    assert not bad, (
        f"experiments/{path.name} imports the method module(s) {bad}: move what they share to "
        f"jpose/ (library code, keyword options) or a shared experiments/ helper module"
    )


def test_allowed_method_imports_are_still_needed():
    """Each exception is removed from the list once the import is gone."""
    for importer, imported in sorted(ALLOWED_METHOD_IMPORTS):
        path = EXPERIMENTS / f"{importer}.py"
        found = {m for m, _ in _imports(ast.parse(path.read_text()), package="experiments")}
        assert f"experiments.{imported}" in found, (importer, imported)


def _jpose_files() -> list[pathlib.Path]:
    return sorted(JPOSE.rglob("*.py"))


def test_jpose_files_found():
    assert len(_jpose_files()) > 20


@pytest.mark.parametrize("path", _jpose_files(), ids=lambda p: str(p.relative_to(JPOSE)))
def test_jpose_never_imports_experiments_or_configs(path):
    rel = path.relative_to(JPOSE)
    package = ".".join(("jpose", *rel.parent.parts))
    bad = []
    for module, in_function in _imports(ast.parse(path.read_text()), package=package):
        top = module.split(".")[0]
        if top not in FORBIDDEN_IN_JPOSE:
            continue
        if in_function and (rel.as_posix(), top) in ALLOWED_LAZY_IN_JPOSE:
            continue
        bad.append(module)
    assert not bad, f"jpose/{rel.as_posix()} imports {sorted(set(bad))}"


def test_the_import_scan_sees_every_form():
    """The scanner itself: absolute, from-, relative, lazy and importlib imports."""
    src = (
        "import experiments.zhou\n"
        "from experiments import baseline as b\n"
        "from experiments.li import x\n"
        "from . import drover\n"
        "def f():\n"
        "    from experiments import wsp\n"
        "    importlib.import_module('experiments.camerapose')\n"
    )
    found = _imports(ast.parse(src), package="experiments")
    names = {m for m, _ in found}
    for m in ("zhou", "baseline", "li", "drover", "wsp", "camerapose"):
        assert f"experiments.{m}" in names, m
    lazy = {m for m, inside in found if inside}
    assert {"experiments.wsp", "experiments.camerapose"} <= lazy
    assert "experiments.zhou" not in lazy


def test_the_library_never_guesses_where_the_checkout_sits(monkeypatch, tmp_path):
    """issue 16: the data folder is an argument or $JPOSE_SHARED_DATA, defaulted in experiments/."""
    from jpose.data import presets

    monkeypatch.delenv("JPOSE_SHARED_DATA", raising=False)
    assert presets.shared_data_dir() is None
    with pytest.raises(FileNotFoundError, match="JPOSE_SHARED_DATA"):
        presets.load_preset("cmu")
    monkeypatch.setenv("JPOSE_SHARED_DATA", str(tmp_path))
    assert presets.shared_data_dir() == tmp_path
    for path in _jpose_files():
        text = path.read_text()
        assert '"shared"' not in text, f"jpose/{path.relative_to(JPOSE)} builds a checkout path"


def test_a_config_naming_another_method_runs_that_method():
    """`python -m experiments.wsp --config=...wsp.py:image` runs experiments.wsp_image (routed by
    config.experiment in experiments.common.cli, not by wsp importing wsp_image)."""
    from experiments import baseline, common, wsp, wsp_image
    from experiments.configs import baseline as baseline_config
    from experiments.configs import wsp as wsp_config

    image = wsp_config.get_config("image,smoke")
    assert image.experiment == "wsp_image"
    assert common.method_run(wsp.run, image) is wsp_image.run
    assert common.method_run(wsp.run, wsp_config.get_config("smoke")) is wsp.run
    assert common.method_run(baseline.run, baseline_config.get_config("smoke")) is baseline.run


def test_the_package_ships_jpose_only_and_its_commands_live_there():
    """The wheel's packages are ``jpose*`` (``experiments/``, ``benchmarks/`` run from the
    checkout) and every console script is a callable in ``jpose``."""
    import importlib
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["packages"]["find"]["include"] == ["jpose*"]
    scripts = project["project"]["scripts"]
    assert {"jpose", "jpose-evaluate"} <= set(scripts)
    for target in scripts.values():
        module, func = target.split(":")
        assert module.split(".")[0] == "jpose", target
        assert callable(getattr(importlib.import_module(module), func)), target
