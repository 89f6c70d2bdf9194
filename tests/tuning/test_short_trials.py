"""A search whose trials were too short to learn says so: the best trial is set beside an
untrained model with the same settings, and a best trial barely better than it is a warning."""

import keras_tuner
import pytest

from tests.tuning.test_search import _argv
from tuning import search


@pytest.mark.parametrize("direction, untrained, best, warns", [
    ("min", 0.2139, 0.2070, True),   # MAE: 3 % of the way to 0 (trials of a few steps)
    ("min", 0.2139, 0.1200, False),  # 44 % of the way
    ("max", 0.10, 0.15, True),       # accuracy: 6 % of the way to 1
    ("max", 0.10, 0.90, False),
])
def test_the_warning_measures_the_way_from_untrained_to_perfect(direction, untrained, best,
                                                                warns):
    objective = keras_tuner.Objective("val_score", direction=direction)
    warning = search.short_trials_warning(objective, untrained, best)
    assert (warning is not None) == warns
    if warns:
        assert "raise --epochs or --limit" in warning


def test_untrained_score_is_the_fresh_models_objective(mnist_tiny, tiny_space, tiny_config):
    from tuning.hypermodels import AutoencoderHyperModel

    hypermodel = AutoencoderHyperModel(mnist_tiny, space=tiny_space, config=tiny_config)
    hp = keras_tuner.HyperParameters()
    score = hypermodel.untrained_score(hp)
    model = hypermodel.build(hp)
    _, val, _ = hypermodel.datasets(hp)
    assert score == pytest.approx(model.evaluate(val, return_dict=True, verbose=0)["mae"],
                                  rel=1e-5)


def test_a_search_of_one_epoch_on_300_images_warns(tmp_path, capsys, data_dir):
    assert search.main(_argv(tmp_path, "short", trials=1)) == 0
    out, err = capsys.readouterr()
    assert "Untrained model with trial" in out
    assert "the trials were too short to learn" in err
