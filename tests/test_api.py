"""API conventions of jpose's pure core, checked by introspection (after dm_pix's api_test).

For every public function of the core modules:
* it has a docstring and type hints (return annotation included);
* options are keyword-only: a parameter with a default value may be positional only if it is an
  array argument (names listed in ``ARRAY_ARGS``);
* the module docstring states shapes and units;
* the module imports no I/O, logging or config machinery (the pure-core rule of STYLE.md).
"""

import ast
import importlib
import inspect
import pathlib

import pytest

CORE_MODULES = [
    "jpose.skeleton",
    "jpose.kinematics",
    "jpose.geometry",
    "jpose.camera",
    "jpose.metrics",
    "jpose.losses",
    "jpose.adversarial",
    "jpose.augment",
    "jpose.multiview",
]
# Optional array-valued arguments that may stay positional (arrays positional, options keyword).
ARRAY_ARGS = {
    "confidence", "visibility", "weights", "mask", "labels", "key", "root", "target", "shape",
    "refinement",
}  # fmt: skip
FORBIDDEN_IMPORTS = {"logging", "absl", "ml_collections", "os", "pathlib", "pickle", "json", "io"}


def _available(names):
    out = []
    for name in names:
        try:
            out.append(importlib.import_module(name))
        except ModuleNotFoundError as err:  # a module a later issue delivers
            if err.name != name:
                raise
    return out


MODULES = _available(CORE_MODULES)


def _public_functions(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in dir(module) if not n.startswith("_")]
    for name in names:
        obj = getattr(module, name)
        if inspect.isfunction(obj) and (
            obj.__module__ == module.__name__ or name in getattr(module, "__all__", ())
        ):
            yield name, obj


def test_core_modules_present():
    present = {m.__name__ for m in MODULES}
    for required in ("jpose.skeleton", "jpose.kinematics", "jpose.geometry", "jpose.camera"):
        assert required in present


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_module_docstring_states_shapes_and_units(module):
    doc = (module.__doc__ or "").lower()
    assert len(doc) > 80, f"{module.__name__} needs a module docstring"
    assert "[..." in doc or "shape" in doc, f"{module.__name__} docstring must state shapes"
    unit_words = ("metre", "meter", "pixel", "unit", "radian")
    assert any(w in doc for w in unit_words), f"{module.__name__} docstring must state units"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_public_functions_follow_conventions(module):
    problems = []
    for name, fn in _public_functions(module):
        where = f"{module.__name__}.{name}"
        if not inspect.getdoc(fn):
            problems.append(f"{where}: no docstring")
        sig = inspect.signature(fn)
        if sig.return_annotation is inspect.Signature.empty:
            problems.append(f"{where}: no return annotation")
        for p in sig.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if p.annotation is inspect.Parameter.empty:
                problems.append(f"{where}: parameter {p.name} has no type hint")
            positional = p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            if positional and p.default is not p.empty and p.name not in ARRAY_ARGS:
                problems.append(f"{where}: option {p.name} should be keyword-only")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_pure_core_imports(module):
    tree = ast.parse(pathlib.Path(module.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    bad = imported & FORBIDDEN_IMPORTS
    assert not bad, f"{module.__name__} imports {bad}: the pure core does no I/O/logging/config"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_formula_docstrings_cite_a_source(module):
    """Every loss and every metric cites a paper and equation (or a named reference).

    Aggregation and bookkeeping helpers (means over groups, tables, unit conversion, the fake
    history buffer) implement no formula and are exempt.
    """
    if module.__name__ not in ("jpose.losses", "jpose.adversarial", "jpose.metrics"):
        pytest.skip("only loss and metric modules implement paper formulas throughout")
    cues = ("eq.", "eq ", "equation", "et al", "table", "sec.", "section", "protocol")
    helpers = ("mean", "per_", "table", "to_mm", "history")
    missing = [
        name
        for name, fn in _public_functions(module)
        if (module.__name__ == "jpose.metrics" or "loss" in name)
        and not any(h in name for h in helpers)
        and not any(c in (inspect.getdoc(fn) or "").lower() for c in cues)
    ]
    assert not missing, f"{module.__name__}: no paper/equation cited in {missing}"


def test_inference_package_republishes_its_modules_public_names():
    inference = importlib.import_module("jpose.inference")
    subs = ("bundles", "keypoints", "lifting", "predictor")
    want = {"pipelines"}.union(
        *(importlib.import_module(f"jpose.inference.{m}").__all__ for m in subs)
    )
    assert set(inference.__all__) == want
    assert all(hasattr(inference, name) for name in want)
