"""tuning/search.py end to end: results files, resume after a crash, seeding, bad input, and a
chief + two workers on loopback."""

import io
import json
import socket
import sys
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from tests import processes
from tuning import search
from tuning.hypermodels import AutoencoderHyperModel

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tuning" / "search.py"
TINY = ["--dataset", "mnist", "--epochs", "1", "--batch-size", "64",
        "--min-depth", "1", "--max-depth", "2", "--min-channels", "4", "--max-channels", "8",
        "--latent-dim", "8", "--quiet"]


def _argv(directory, project, *extra, task="autoencoder", trials=2, seed=0, limit=300):
    return ["--task", task, "--max-trials", str(trials), "--seed", str(seed), "--limit",
            str(limit), "--directory", str(directory), "--project", project, *TINY, *extra]


def _trials(project_dir):
    """{trial_id: trial.json} of a KerasTuner project folder."""
    return {path.parent.name[len("trial_"):]: json.loads(path.read_text())
            for path in sorted(Path(project_dir).glob("trial_*/trial.json"))}


class _Killed(BaseException):
    """Stands in for a kill: not an Exception, so KerasTuner cannot record it as a failed trial."""


@pytest.fixture(scope="module")
def resumed_search(tmp_path_factory, data_dir):
    """A 2-trial search killed as its second trial starts, then rerun with the same command.

    Returns (project_dir, trial files after the kill, the rerun's fit calls, its stdout).
    """
    directory = tmp_path_factory.mktemp("search")
    argv = _argv(directory, "ae", "--tensorboard")
    original_fit = AutoencoderHyperModel.fit
    calls = []

    def fit_killed_at_second_trial(self, hp, model, *args, **kwargs):
        calls.append(hp.values.copy())
        if len(calls) == 2:
            raise _Killed()
        return original_fit(self, hp, model, *args, **kwargs)

    AutoencoderHyperModel.fit = fit_killed_at_second_trial
    try:
        with pytest.raises(_Killed):
            search.main(argv)
    finally:
        AutoencoderHyperModel.fit = original_fit
    project_dir = directory / "ae"
    before = _trials(project_dir)
    assert [trial["status"] for trial in before.values()] == ["COMPLETED", "RUNNING"]

    rerun_calls = []

    def counting_fit(self, hp, model, *args, **kwargs):
        rerun_calls.append(hp.values.copy())
        return original_fit(self, hp, model, *args, **kwargs)

    AutoencoderHyperModel.fit = counting_fit
    out = io.StringIO()
    try:
        with redirect_stdout(out):
            assert search.main(argv) == 0
    finally:
        AutoencoderHyperModel.fit = original_fit
    return project_dir, before, rerun_calls, out.getvalue()


def test_resumed_search_ends_with_exactly_max_trials(resumed_search):
    project_dir, before, rerun_calls, _ = resumed_search
    after = _trials(project_dir)
    assert sorted(after) == ["0", "1"]
    assert all(trial["status"] == "COMPLETED" for trial in after.values())
    # The finished trial was kept as it was, the interrupted one rerun with its own values.
    assert after["0"] == before["0"]
    assert after["1"]["hyperparameters"]["values"] == before["1"]["hyperparameters"]["values"]
    # The rerun trained only the interrupted trial and then the final model.
    assert len(rerun_calls) == 2
    assert rerun_calls[0] == before["1"]["hyperparameters"]["values"]


def test_search_writes_best_hyperparameters_and_a_model_that_reloads(resumed_search, tmp_path):
    import keras

    project_dir, _, rerun_calls, stdout = resumed_search
    trials = _trials(project_dir)
    best_id = min(trials, key=lambda trial_id: trials[trial_id]["score"])

    assert "rank" in stdout and "val_mae" in stdout  # the best-trials table
    saved = json.loads((project_dir / search.BEST_HPS_FILE).read_text())
    assert saved["objective"] == "val_mae" and saved["direction"] == "min"
    assert saved["trial_id"] == best_id
    assert saved["score"] == pytest.approx(trials[best_id]["score"])
    assert saved["hyperparameters"] == trials[best_id]["hyperparameters"]["values"]
    assert rerun_calls[-1] == saved["hyperparameters"]  # the final model used the best values
    assert json.loads((project_dir / search.SPEC_FILE).read_text())["task"] == "autoencoder"

    model_path = project_dir / search.BEST_MODEL_FILE
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype="float32")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", keras.saving.load_model(model_path).predict(x, verbose=0))
    script = (
        "import sys, numpy as np, keras, keras_latent\n"
        "model = keras.saving.load_model(sys.argv[1])\n"
        "assert type(model).__name__ == 'Autoencoder', type(model)\n"
        "got = model.predict(np.load(sys.argv[2]), verbose=0)\n"
        "np.testing.assert_allclose(got, np.load(sys.argv[3]), atol=1e-6)\n"
        "print('RELOAD OK')\n"
    )
    process = processes.start(
        [sys.executable, "-c", script, model_path, tmp_path / "x.npy", tmp_path / "expected.npy"],
        tmp_path / "reload.log")
    assert processes.wait_while_progressing(process) == 0, processes.output_of(process)
    assert "RELOAD OK" in processes.output_of(process)


def test_tensorboard_gives_each_trial_and_the_retrained_model_a_folder(resumed_search):
    import tensorflow as tf

    project_dir, _, _, stdout = resumed_search
    logs = project_dir / "tensorboard"
    folders = [logs / trial_id / "execution0" for trial_id in _trials(project_dir)]
    for folder in [*folders, logs / "retrained"]:
        for split in ("train", "validation"):
            files = list((folder / split).glob("events.out.tfevents.*"))
            tags = {value.tag for path in files
                    for event in tf.compat.v1.train.summary_iterator(str(path))
                    for value in event.summary.value}
            assert {"epoch_loss", "epoch_mae"} <= tags, (folder, split)
    assert f"one folder per trial under {logs}" in stdout
    # Without the tensorboard package (no hparams plugin) the search says what it leaves out.
    assert ('pip install -e ".[tensorboard]"' in stdout) != search.hparams_available()


@pytest.mark.parametrize("tuner", ["random", "bayesian"])
def test_same_seed_proposes_the_same_trials(tuner, resumed_search, mnist_tiny, tiny_config,
                                            tmp_path):
    from tuning.hypermodels import EncoderSpace

    # The space the CLI flags in TINY describe.
    space = EncoderSpace(min_depth=1, max_depth=2, min_channels=4, max_channels=8,
                         latent_dims=(8,))
    hypermodel = AutoencoderHyperModel(mnist_tiny, space=space, config=tiny_config)

    def proposals(seed, project):
        args = search.build_parser().parse_args(
            _argv(tmp_path, project, "--tuner", tuner, seed=seed))
        oracle = search.make_tuner(args, hypermodel, overwrite=False).oracle
        return [oracle.create_trial(f"tuner{i}").hyperparameters.values for i in range(2)]

    first, again, other = proposals(0, "a"), proposals(0, "b"), proposals(1, "c")
    assert first == again
    assert first != other
    if tuner == "random":  # what the real search with seed 0 ran
        project_dir = resumed_search[0]
        ran = [trial["hyperparameters"]["values"] for trial in _trials(project_dir).values()]
        assert ran == first


@pytest.mark.parametrize("argv, message", [
    (["--task", "regression", "--dataset", "mnist"], "invalid choice: 'regression'"),
    (["--task", "simclr", "--dataset", "mnist", "--tuner", "grid"], "invalid choice: 'grid'"),
    (["--task", "simclr", "--dataset", "mnist", "--max-trials", "0"],
     "argument --max-trials: expected an integer >= 1, got '0'"),
    (["--task", "simclr", "--dataset", "imagenet"], "invalid choice: 'imagenet'"),
    (["--task", "classifier", "--dataset", "mnist", "--objective", "knn"],
     "only --task autoencoder takes --objective"),
])
def test_bad_arguments_exit_2_with_a_clear_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        search.main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err  # the whole of it: one line naming the problem, then --help
    assert error.startswith("tuning/search.py: error: ") and error.count("\n") == 1
    assert message in error and error.endswith(" (try: tuning/search.py --help)\n")


def test_a_project_holding_another_search_is_refused(tmp_path, capsys):
    project_dir = tmp_path / "shared"
    project_dir.mkdir()
    (project_dir / search.SPEC_FILE).write_text(
        json.dumps({"task": "classifier", "dataset": "mnist", "tuner": "random"}))
    with pytest.raises(SystemExit) as exit_info:
        search.main(_argv(tmp_path, "shared", task="autoencoder"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "holds another search (task='classifier'" in err and "--overwrite" in err


def test_a_bad_search_space_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        search.main(_argv(tmp_path, "p", "--max-channels", "12"))
    assert exit_info.value.code == 2
    assert "powers of two" in capsys.readouterr().err


def _free_loopback_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_chief_and_two_workers_share_a_search(tmp_path, data_dir):
    port = _free_loopback_port()
    argv = [sys.executable, str(SCRIPT), *_argv(tmp_path, "dist", trials=4, limit=200)]
    tuners = {}
    try:
        for tuner_id in ("chief", "tuner0", "tuner1"):
            env = processes.child_env(KERASTUNER_TUNER_ID=tuner_id,
                                      KERASTUNER_ORACLE_IP="127.0.0.1",
                                      KERASTUNER_ORACLE_PORT=port)
            tuners[tuner_id] = processes.start(argv, tmp_path / f"{tuner_id}.log", env=env)
        # No total bound (the three took 52 s on 2 cores at load average 5): waits while the
        # logs or the project folder change, fails after a long stall.
        processes.wait_while_progressing(list(tuners.values()), [tmp_path / "dist"])
    finally:
        processes.stop(tuners.values())

    for tuner_id, process in tuners.items():
        assert process.returncode == 0, \
            f"{tuner_id} exited {process.returncode}:\n{processes.output_of(process, 3000)}"
    project_dir = tmp_path / "dist"
    trials = _trials(project_dir)
    assert len(trials) == 4
    assert all(trial["status"] == "COMPLETED" for trial in trials.values())
    ran_by = [(project_dir / f"trial_{trial_id}" / search.RAN_BY_FILE).read_text().strip()
              for trial_id in trials]
    assert set(ran_by) == {"tuner0", "tuner1"}, ran_by
    assert (project_dir / search.BEST_MODEL_FILE).is_file()
    assert (project_dir / search.BEST_HPS_FILE).is_file()


def test_a_directory_that_is_a_file_exits_2(tmp_path, capsys):
    taken = tmp_path / "runs.txt"
    taken.write_text("a file")
    for directory in (taken, taken / "below"):
        with pytest.raises(SystemExit) as exit_info:
            search.main(_argv(directory, "p"))
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert "argument --directory" in err and "is a file, not a folder" in err
    (tmp_path / "p").write_text("a file where the project folder goes")
    with pytest.raises(SystemExit) as exit_info:
        search.main(_argv(tmp_path, "p"))
    assert exit_info.value.code == 2
    assert "is a file, not a project folder" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["oracle.json", "trial_0/trial.json"])
def test_truncated_tuner_state_is_named(tmp_path, capsys, name):
    project_dir = tmp_path / "ae"
    (project_dir / "trial_0").mkdir(parents=True)
    (project_dir / search.SPEC_FILE).write_text(
        json.dumps({"task": "autoencoder", "dataset": "mnist", "tuner": "random"}))
    (project_dir / "oracle.json").write_text('{"ongoing_trials": {}}')
    (project_dir / "trial_0" / "trial.json").write_text('{"trial_id": "0"}')
    (project_dir / name).write_text('{"ongoing_trials": {"tun')  # a kill mid-write
    with pytest.raises(SystemExit) as exit_info:
        search.main(_argv(tmp_path, "ae"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert str(project_dir / name) in err and "--overwrite" in err
