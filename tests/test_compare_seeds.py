"""``recipes/compare.py --seeds N``: each seed in its own folder, each method given its seed,
one row per method with mean ± interval. The methods are stand-ins that write a metrics.json
(the real recipes run end to end in test_recipes.py)."""

import importlib
import json
import sys
from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


@pytest.fixture
def compare(monkeypatch):
    monkeypatch.syspath_prepend(str(RECIPES))
    module = importlib.import_module("compare")
    calls = []

    def fake_method(name, accuracy_by_seed):
        def main(argv):
            seed = int(argv[len(argv) - 1 - argv[::-1].index("--seed") + 1])  # the last --seed
            output = Path(argv[argv.index("--output") + 1])
            calls.append((name, seed, output))
            output.mkdir(parents=True, exist_ok=True)
            metrics = {"method": name, "dataset": "mnist", "kind": "encoder",
                       "accuracy": {"train": 1.0, "val": 1.0, "test": accuracy_by_seed[seed]},
                       "knn_accuracy": 0.5}
            (output / "metrics.json").write_text(json.dumps(metrics))
        return type(name, (), {"__name__": name, "main": staticmethod(main)})

    methods = (fake_method("good", {3: 0.90, 4: 0.91, 5: 0.92}),
               fake_method("bad", {3: 0.50, 4: 0.51, 5: 0.52}))
    monkeypatch.setattr(module, "METHODS", methods)
    monkeypatch.setattr(module, "_random_baseline", lambda dataset, passthrough, output:
                        methods[1].main([*passthrough, "--output", str(output)]) or output)
    yield module, calls
    sys.modules.pop("compare", None)


def test_each_seed_runs_in_its_folder_and_the_rows_pool_the_seeds(compare, tmp_path):
    module, calls = compare
    module.main(["--dataset", "mnist", "--seeds", "3", "--seed", "3", "--output", str(tmp_path)])
    root = tmp_path / "mnist"
    assert {(name, seed) for name, seed, _ in calls} == {
        (name, seed) for name in ("good", "bad") for seed in (3, 4, 5)}
    assert (root / "seed_4" / "good" / "metrics.json").is_file()
    assert (root / "seed_5" / "random_encoder" / "metrics.json").is_file()
    report = (root / "comparison.md").read_text()
    assert "| good | — | 3 |" in report and "91.00 ± 2.48 %" in report
    assert "- Test acc: good better than bad" in report


def test_one_seed_keeps_the_folders_of_a_single_run(compare, tmp_path):
    module, calls = compare
    module.main(["--dataset", "mnist", "--output", str(tmp_path), "--seed", "4"])
    assert {output for _, _, output in calls} == {
        tmp_path / "mnist" / name for name in ("good", "bad", "random_encoder")}
    assert "| good | — | 1 | 100.00 % | 100.00 % | 91.00 % |" in (
        tmp_path / "mnist" / "comparison.md").read_text()
