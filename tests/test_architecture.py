"""Every import inside keras_latent runs down the layers docs/ARCHITECTURE.md draws, none back up
(function-level imports included), and the package never imports the scripts built on it."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "keras_latent"

#: Bottom to top, as docs/ARCHITECTURE.md's diagram: a unit may import its own layer and the
#: layers below it. A unit is a module or subpackage directly under keras_latent/.
LAYERS = [
    {"__init__", "errors", "io", "flags", "backend", "schedules"},  # foundations: no Keras model
    {"data"},
    {"losses", "models"},
    {"serializables", "evaluation"},  # measures and reports on arrays and any Keras model
    {"paradigms"},  # training; its monitors read evaluation's measures
    {"experiments"},  # runs: phases, resume, the report of a run
    {"cli", "__main__"},
]
#: Upward imports with a reason (made at call time, never at import).
EXCEPTIONS = {
    # load_model must register every custom class first, models' own included.
    ("models", "serializables"),
}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path):
    """(line, imported keras_latent unit) for every import in ``path``."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "keras_latent":
                yield from ((node.lineno, alias.name) for alias in node.names)
            elif node.module.startswith("keras_latent."):
                yield node.lineno, _unit(node.module)
        elif isinstance(node, ast.Import):
            yield from ((node.lineno, _unit(alias.name)) for alias in node.names
                        if alias.name.startswith("keras_latent"))


def _level(unit):
    return next(index for index, layer in enumerate(LAYERS) if unit in layer)


def _units():
    return sorted({path.stem if path.parent == PACKAGE else path.relative_to(PACKAGE).parts[0]
                   for path in PACKAGE.rglob("*.py")})


def test_every_unit_has_a_layer():
    placed = set().union(*LAYERS)
    assert not set(_units()) - placed, "place the new module in LAYERS and ARCHITECTURE.md"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_down_the_layers(path):
    unit = _unit(".".join(("keras_latent", *path.relative_to(PACKAGE).with_suffix("").parts)))
    upward = [f"line {line}: {unit} -> {target}" for line, target in _imports(path)
              if target != unit and (unit, target) not in EXCEPTIONS
              and _level(target) > _level(unit)]
    assert not upward, "imports back up the layers: " + "; ".join(upward)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_package_never_imports_the_scripts(path):
    scripts = {"recipes", "tuning", "benchmarks", "tests"}
    for node in ast.walk(ast.parse(path.read_text())):
        names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                 else [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
        assert not {name.split(".")[0] for name in names} & scripts, f"{path} imports {names}"
