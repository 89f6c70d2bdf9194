"""compare_runs on fake run folders shaped like evaluate_model's output."""

import json

import numpy as np
import pytest

from keras_latent.evaluation.compare import RunFolderError, compare_runs, load_run


def _fake_run(folder, method, accuracy, knn, mae=None, seed=0, extra=None):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    np.savez(folder / "latent_tsne.npz", latent_2d=rng.normal(size=(30, 2)),
             labels=rng.integers(0, 10, 30))
    metrics = {"kind": "autoencoder" if mae else "classifier", "method": method,
               "dataset": "mnist", "class_names": [str(i) for i in range(10)],
               "accuracy": dict(zip(("train", "val", "test"), accuracy)),
               "knn_accuracy": knn, "linear_probe_accuracy": knn - 0.01,
               "accuracy_source": "frozen-encoder MLP probe" if mae else "classifier head",
               "latent_tsne": "latent_tsne.npz"}
    if mae is not None:
        metrics["mae"] = {"train": mae / 2, "val": mae / 2, "test": mae}
    metrics.update(extra or {})
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_table_has_a_row_per_run_and_the_grid(tmp_path):
    runs = [_fake_run(tmp_path / "ae", "autoencoder", (0.9, 0.85, 0.8412), 0.8, mae=0.0613),
            _fake_run(tmp_path / "clf", "classifier", (0.99, 0.97, 0.9655), 0.95, seed=1)]
    result = compare_runs(runs, tmp_path / "out")
    rows = result["table"].splitlines()
    assert rows[0].startswith("| Method |") and len(rows) == 4
    assert rows[2].startswith("| autoencoder |") and "84.12 %" in rows[2] and "0.0613" in rows[2]
    assert rows[3].startswith("| classifier |") and "96.55 %" in rows[3]
    cells = [cell.strip() for cell in rows[3].split("|")]
    assert cells[2] == "classifier head" and cells[3] == "1" and cells[7] == "—"  # no MAE
    assert cells[8] == "94.00 %" and cells[9] == "95.00 %"  # linear probe, k-NN@20
    assert cells[10] == "—" and cells[11] == "—"  # a run from before k-NN@200 and collapse
    assert "| autoencoder | frozen-encoder MLP probe |" in rows[2]
    markdown = (tmp_path / "out" / "comparison.md").read_text()
    assert result["table"] in markdown and "tsne_grid.png" in markdown
    assert (tmp_path / "out" / "tsne_grid.png").stat().st_size > 1000


def test_same_method_twice_is_told_apart_by_folder(tmp_path):
    runs = [_fake_run(tmp_path / name, "simclr", (0.5, 0.5, 0.5), 0.5) for name in ("t05", "t01")]
    table = compare_runs(runs, tmp_path / "out")["table"]
    assert "| simclr (t05) |" in table and "| simclr (t01) |" in table


def test_folder_without_metrics_is_a_clear_error(tmp_path):
    good = _fake_run(tmp_path / "good", "ae", (0.5, 0.5, 0.5), 0.5)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFolderError, match="empty has no metrics.json"):
        compare_runs([good, tmp_path / "empty"], tmp_path / "out")
    with pytest.raises(RunFolderError, match="not a folder"):
        load_run(tmp_path / "nowhere")
    (tmp_path / "empty" / "metrics.json").write_text("{not json")
    with pytest.raises(RunFolderError, match="not valid JSON"):
        load_run(tmp_path / "empty")
    assert not (tmp_path / "out" / "comparison.md").exists()


def _seeded(tmp_path, method, tests, rank, start=0):
    return [_fake_run(tmp_path / f"seed_{start + i}" / method, method, (1.0, 1.0, test), 0.5,
                      seed=i, extra={"knn200_weighted_accuracy": test - 0.01,
                                     "collapse": {"effective_rank": rank + i}})
            for i, test in enumerate(tests)]


def test_seeds_of_a_method_make_one_row_with_mean_and_interval(tmp_path):
    simclr = _seeded(tmp_path, "simclr", (0.90, 0.91, 0.92), 40.0)
    autoencoder = _seeded(tmp_path, "ae", (0.80, 0.81, 0.82), 20.0)
    noisy = _seeded(tmp_path, "noisy", (0.70, 0.95, 0.80), 30.0)
    result = compare_runs([simclr, autoencoder, noisy], tmp_path / "out")
    rows = result["table"].splitlines()
    assert len(rows) == 5
    cells = [cell.strip() for cell in rows[2].split("|")]
    # 0.90, 0.91, 0.92: mean 91 %, half-width t(0.975, 2) * 0.01 / sqrt(3) = 2.48 points
    assert cells[1] == "simclr" and cells[3] == "3" and cells[6] == "91.00 ± 2.48 %"
    assert cells[10] == "90.00 ± 2.48 %" and cells[11] == "41.00 ± 2.48"
    markdown = (tmp_path / "out" / "comparison.md").read_text()
    assert "Welch's t-test, p < 0.05" in markdown
    assert "- Test acc: simclr better than ae" in markdown
    # the noisy method overlaps both: no difference with it is claimed for the test accuracy
    assert "Test acc: simclr better than noisy" not in markdown
    assert "Test acc: noisy better than ae" not in markdown
    assert "Train acc" not in markdown.split("Welch")[1]  # the fit is not what is judged
    assert "- Effective rank: noisy higher than ae" in markdown  # a diagnostic: no "better"
    assert "`" + str(simclr[2]) + "`" in markdown  # every seed's folder is listed


def test_pool_groups_runs_by_method(tmp_path):
    runs = _seeded(tmp_path, "a", (0.5, 0.6), 1.0) + _seeded(tmp_path, "b", (0.7, 0.7), 1.0, 2)
    table = compare_runs(runs, tmp_path / "out", pool=True)["table"]
    assert table.count("\n") == 3  # header, rule, two rows
    assert "| a | classifier head | 2 |" in table and "| b | classifier head | 2 |" in table
