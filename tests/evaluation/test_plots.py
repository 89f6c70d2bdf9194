"""Each plot writes a real PNG and carries a title and axis labels."""

import numpy as np
import pytest

from keras_latent.evaluation import plots

CLASS_NAMES = [str(i) for i in range(10)]


def _titles(figure):
    titles = [ax.get_title() for ax in figure.axes if ax.get_visible()]
    if figure._suptitle is not None:
        titles.append(figure._suptitle.get_text())
    return [t for t in titles if t]


def _assert_png(path):
    assert path.is_file()
    with open(path, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 1000
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp left


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, size=(40, 8, 8, 1), dtype=np.uint8)


def test_reconstructions(tmp_path, images):
    path = tmp_path / "rec.png"
    figure = plots.plot_reconstructions(images, images / 255.0, n=4, seed=1, path=path)
    _assert_png(path)
    assert _titles(figure)
    labels = [ax.get_ylabel() for ax in figure.axes]
    assert "original" in labels and "reconstruction" in labels
    assert len(figure.axes) == 8
    with pytest.raises(ValueError, match="pair"):
        plots.plot_reconstructions(images, images[:10])


def test_interpolation_strip(tmp_path, images):
    path = tmp_path / "interp.png"
    figure = plots.plot_interpolation(images[:6] / 255.0, path=path)
    _assert_png(path)
    assert _titles(figure)
    assert [ax.get_xlabel() for ax in figure.axes][::5] == ["0.00", "1.00"]


def test_interpolate_decodes_the_straight_line_incl_both_ends():
    class Linear:
        """Encode = mean pixel value; decode = constant image of that value."""

        def __init__(self, fn):
            self.fn = fn

        def predict(self, batches, batch_size=None, verbose=None):
            return self.fn(np.concatenate([np.asarray(batch) for batch in batches]))

    class FakeAutoencoder:
        encoder = Linear(lambda x: x.reshape(len(x), -1).mean(axis=1, keepdims=True))
        decoder = Linear(lambda z: np.broadcast_to(z[:, :, None, None], (len(z), 2, 2, 1)))

    a = np.zeros((2, 2, 1), dtype=np.uint8)
    b = np.full((2, 2, 1), 255, dtype=np.uint8)
    strip = plots.interpolate(FakeAutoencoder(), a, b, steps=5)
    assert strip.shape == (5, 2, 2, 1)
    np.testing.assert_allclose(strip[:, 0, 0, 0], [0.0, 0.25, 0.5, 0.75, 1.0], atol=1e-6)
    with pytest.raises(ValueError, match="encoder and a decoder"):
        plots.interpolate(object(), a, b)


def test_tsne_side_by_side_with_legend(tmp_path, images):
    labels = np.arange(40) % 4
    latents = np.eye(4)[labels] + 0.01 * np.random.default_rng(0).normal(size=(40, 4))
    path = tmp_path / "tsne.png"
    embeddings = plots.tsne_embeddings(images, latents, labels, sample=30, seed=0)
    assert embeddings.latent_2d.shape == (30, 2) and embeddings.image_2d.shape == (30, 2)
    again = plots.embed_tsne(latents[embeddings.indices], seed=0)
    np.testing.assert_allclose(again, embeddings.latent_2d)  # seeded
    figure = plots.plot_tsne(None, None, None, CLASS_NAMES, embeddings=embeddings, path=path)
    _assert_png(path)
    assert len(_titles(figure)) == 3
    visible = [ax for ax in figure.axes if ax.get_visible()]
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in visible)
    assert figure.legends and len(figure.legends[0].get_texts()) == 4


def test_tsne_grid_has_a_panel_per_run(tmp_path):
    rng = np.random.default_rng(0)
    runs = {name: (rng.normal(size=(20, 2)), rng.integers(0, 10, 20)) for name in "abc"}
    path = tmp_path / "grid.png"
    figure = plots.plot_tsne_grid(runs, CLASS_NAMES, path=path)
    _assert_png(path)
    titles = [ax.get_title() for ax in figure.axes if ax.get_visible()]
    assert titles == ["a", "b", "c"]
    assert figure._suptitle.get_text()
    with pytest.raises(ValueError, match="coordinates"):
        plots.plot_tsne_grid({"bad": (np.zeros((5, 3)), np.zeros(5, int))}, CLASS_NAMES)


def test_history_from_dict_and_csv(tmp_path):
    history = {"loss": [1.0, 0.5, 0.25], "val_loss": [1.1, 0.7, 0.6],
               "accuracy": [0.3, 0.6, 0.8], "val_accuracy": [0.3, 0.5, 0.6],
               "learning_rate": [1e-3, 1e-3, 1e-4]}
    figure = plots.plot_history(history, path=tmp_path / "h.png")
    _assert_png(tmp_path / "h.png")
    assert [ax.get_title() for ax in figure.axes] == ["loss", "accuracy"]
    assert all(ax.get_xlabel() == "epoch" and ax.get_ylabel() for ax in figure.axes)
    lines = figure.axes[0].get_lines()
    np.testing.assert_allclose(lines[1].get_ydata(), history["val_loss"])

    csv_path = tmp_path / "log.csv"
    csv_path.write_text("epoch,loss,val_loss\n0,2.0,2.5\n1,1.0,1.5\n")
    figure = plots.plot_history(str(csv_path))
    assert [ax.get_title() for ax in figure.axes] == ["loss"]
    np.testing.assert_allclose(figure.axes[0].get_lines()[0].get_ydata(), [2.0, 1.0])
    with pytest.raises(ValueError, match="not a file"):
        plots.plot_history(tmp_path / "missing.csv")


def test_confusion_matrix_normalised_rows(tmp_path):
    cm = np.array([[3, 1], [0, 4]])
    path = tmp_path / "cm.png"
    figure = plots.plot_confusion_matrix(cm, ["cat", "dog"], path=path)
    _assert_png(path)
    ax = figure.axes[0]
    assert ax.get_title() and ax.get_xlabel() == "predicted class" and ax.get_ylabel()
    np.testing.assert_allclose(ax.get_images()[0].get_array(), [[0.75, 0.25], [0.0, 1.0]])
    with pytest.raises(ValueError, match="square"):
        plots.plot_confusion_matrix(cm, ["cat", "dog", "eel"])


def test_every_plot_has_a_caption():
    assert set(plots.CAPTIONS) == {"reconstructions", "interpolation", "tsne", "history",
                                   "confusion_matrix", "tsne_grid", "sweep", "spectrum"}
    assert all(text.endswith(".") for text in plots.CAPTIONS.values())


def test_sweep_plots_mae_and_accuracy_against_latent_size(tmp_path):
    results = {"c=4": {2: {"test_mae": 0.2, "test_accuracy": 0.5},
                       16: {"test_mae": 0.1, "test_accuracy": 0.9}},
               "c=16": {2: {"test_mae": 0.15, "test_accuracy": 0.6},
                        16: {"test_mae": 0.05, "test_accuracy": 0.95}}}
    path = tmp_path / "sweep.png"
    figure = plots.plot_sweep(results, path=path)
    _assert_png(path)
    assert _titles(figure)
    assert [ax.get_xlabel() for ax in figure.axes] == ["latent dimension"] * 2
    assert all(ax.get_ylabel() for ax in figure.axes)
    assert len(figure.axes[0].get_lines()) == 2  # one curve per width
    with pytest.raises(ValueError):
        plots.plot_sweep({})


def test_spectrum_plots_the_variance_share_per_component(tmp_path):
    path = tmp_path / "spectrum.png"
    figure = plots.plot_spectrum([4.0, 2.0, 1.0, 1.0], effective_rank=3.4, path=path)
    _assert_png(path)
    ax = figure.axes[0]
    assert "effective rank 3.4 of 4" in ax.get_title()
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_yscale() == "log"
    assert ax.xaxis.get_gridlines()[0].get_visible()
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [16 / 22, 4 / 22, 1 / 22, 1 / 22])
    with pytest.raises(ValueError, match="1-D"):
        plots.plot_spectrum(np.ones((2, 2)))


def test_a_torn_last_row_of_a_log_costs_that_row_not_a_column(tmp_path):
    """A log cut mid-line by a kill (an older version appended in place): the curves keep every
    metric and every whole epoch, as ``keras-latent evaluate --history`` draws them."""
    log = tmp_path / "training_log.csv"
    log.write_text("epoch,loss,val_loss\n0,1.0,2.0\n1,0.5,1.5\n2,0.4,1.")
    curves = plots.history_curves(log)
    assert curves["loss"] == [1.0, 0.5] and curves["val_loss"] == [2.0, 1.5]
