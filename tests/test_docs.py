"""Docs that cannot go stale silently: README's "In Python" snippet runs, and the recipe
defaults README and docs/RESULTS.md quote are the recipes' SETTINGS tables."""

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()

#: The snippet's lines the test shrinks, each of which must appear exactly once.
SMALL_RUN = {
    "# splits = splits.limit(2000)": "splits = splits.limit(300)",
    "epochs=10,": "epochs=1,",
}


def _python_block(markdown: str, heading: str) -> str:
    """The first ```python block after ``heading``."""
    section = markdown.split(f"\n{heading}\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_python_snippet_runs(tmp_path, data_dir):
    code = _python_block(README, "## In Python")
    for line, small in SMALL_RUN.items():
        assert code.count(line) == 1, f"README's snippet no longer has {line!r} once"
        code = code.replace(line, small)
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=600,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert (tmp_path / "runs" / "ae" / "report.md").is_file()


# --------------------------------------------------------------- quoted defaults


@pytest.fixture(scope="module")
def recipes():
    sys.path.insert(0, str(REPO / "recipes"))
    yield {name: importlib.import_module(name) for name in ("autoencoder", "classifier", "simclr")}
    sys.path.remove(str(REPO / "recipes"))


SCRIPTS = {"mnist": "mnist_{}.py", "cifar10": "cifar_{}.py",
           "fashion_mnist": "{}.py --dataset fashion_mnist"}
TABLE_START = "<!-- defaults: tests/test_docs.py writes this table from the recipes' SETTINGS -->"
TABLE_END = "<!-- end of defaults -->"


def _encoder(settings) -> str:
    arch = settings["architecture"]
    if isinstance(arch, str):
        text = f"`{arch}`"
    else:
        text = f"conv {'-'.join(map(str, arch['channels']))}, {arch['activation']}"
        text += f", {arch['pooling']} pooling" if arch.get("pooling") else ""
    noise = (settings.get("augment") or {}).get("noise_std")
    return text + (f", input noise sd {noise}" if noise else "")


def _probe(settings) -> str:
    from keras_latent.paradigms.probe import PROBE_CONFIG

    if "probe" not in settings:
        return "its own linear head"
    probe = settings["probe"]
    head = probe["head_kwargs"]
    text = f"{probe.get('members', 1)} x MLP {head['widths'][0]}, dropout {head['dropout']}"
    if probe.get("augmented_copies"):
        text += f", {probe['augmented_copies']} shifted copies"
    return (f"{text}, {settings.get('probe_epochs', PROBE_CONFIG.epochs)} epochs, batch "
            f"{settings.get('probe_batch_size', PROBE_CONFIG.batch_size)}, "
            f"lr {settings['probe_learning_rate']:g}")


def defaults_table(recipes) -> str:
    """RESULTS.md's table of every recipe's defaults, as the SETTINGS tables give them."""
    rows = ["| command | encoder | epochs | batch | learning rate | temperature | probe |",
            "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for dataset, script in SCRIPTS.items():
        for method, module in recipes.items():
            settings = module.SETTINGS[dataset]
            rows.append(
                f"| `python recipes/{script.format(method)}` | {_encoder(settings)} | "
                f"{settings['epochs']} | {settings['batch_size']} | "
                f"{settings['learning_rate']:g} | {settings.get('temperature', '—')} | "
                f"{_probe(settings)} |")
    return "\n".join(rows)


def test_results_quotes_the_recipes_defaults(recipes):
    results = (REPO / "docs" / "RESULTS.md").read_text()
    quoted = results.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0].strip()
    assert quoted == defaults_table(recipes), (
        "docs/RESULTS.md's defaults table differs from the recipes' SETTINGS; paste this:\n"
        + defaults_table(recipes))


def test_readme_quotes_the_recipes_defaults(recipes):
    autoencoder, classifier = recipes["autoencoder"].SETTINGS, recipes["classifier"].SETTINGS
    quotes = {  # README's words -> the setting they quote
        r"autoencoder \((\d+)-d code\)": autoencoder["cifar10"]["latent_dim"],
        r"Gaussian noise, sd ([\d.]+)": autoencoder["cifar10"]["augment"]["noise_std"],
        r"`cifar_fast` encoder in (\d+) epochs": classifier["cifar10"]["epochs"],
    }
    assert classifier["cifar10"]["architecture"] == "cifar_fast"
    for pattern, value in quotes.items():
        found = re.findall(pattern, README)
        assert found and all(float(text) == value for text in found), (pattern, found, value)


def test_architecture_follows_the_real_temperature(recipes):
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    quoted = re.search(r'`SETTINGS\["cifar10"\]\["temperature"\]` \(([\d.]+)\)', text).group(1)
    assert float(quoted) == recipes["simclr"].SETTINGS["cifar10"]["temperature"]


def test_the_recipes_comments_point_at_rows_that_exist():
    """A settings comment says why in a line and names the RESULTS.md row (in parentheses and
    quotes) that measured it; the row must be there."""
    results = (REPO / "docs" / "RESULTS.md").read_text()
    for name in ("autoencoder", "classifier", "simclr"):
        source = (REPO / "recipes" / f"{name}.py").read_text()
        comments = " ".join(line.split("#", 1)[1].strip() for line in source.splitlines()
                            if line.lstrip().startswith("#"))
        groups = re.findall(r'\(((?:docs/RESULTS\.md, )?"[^()]+")\)', comments)
        rows = [row for group in groups for row in re.findall(r'"([^"]+)"', group)]
        assert rows, f"recipes/{name}.py names no RESULTS.md row"
        for row in rows:
            assert row in results, f"recipes/{name}.py points at {row!r}, not in RESULTS.md"
