"""Judge a trained model: metrics, plots, a per-run report and a comparison across runs.

See docs/ARCHITECTURE.md. Everything here takes NumPy arrays or a trained model and writes
plain files (JSON, PNG, Markdown), so runs can be compared long after training.
"""

from keras_latent.evaluation import collapse, compare, metrics, plots, report, seeds  # noqa: F401
from keras_latent.evaluation.metrics import (  # noqa: F401
    accuracy,
    confusion_matrix,
    encode,
    knn_accuracy,
    linear_probe_accuracy,
    mean_absolute_error,
    per_class_accuracy,
    predict_in_batches,
    silhouette,
)
from keras_latent.evaluation.plots import (  # noqa: F401
    CAPTIONS,
    interpolate,
    plot_confusion_matrix,
    plot_history,
    plot_interpolation,
    plot_reconstructions,
    plot_spectrum,
    plot_tsne,
    plot_tsne_grid,
)
from keras_latent.evaluation.report import evaluate_model, model_kind  # noqa: F401
from keras_latent.evaluation.compare import RunFolderError, compare_runs  # noqa: F401
