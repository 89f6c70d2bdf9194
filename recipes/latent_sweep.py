"""How reconstruction error and probe accuracy change with the latent size.

For every latent size in LATENT_DIMS and every base channel count in BASE_CHANNELS (the conv
pyramid c, 2c, 4c), trains an autoencoder (on MNIST unless --dataset says otherwise), probes its
frozen encoder, and plots test MAE and probe accuracy against the latent size, one curve per
channel count.

    python recipes/latent_sweep.py [--dataset mnist|cifar10|fashion_mnist] [--epochs N] [--quick]
"""

from _plumbing import finish, recipe_parser, run_recipe, setup, start_run

from keras_latent import flags

# Hyperparameters (edit freely; the same for every --dataset).
ARCHITECTURE = "mnist_conv"
LATENT_DIMS = [2, 4, 16, 64, 128, 256]
BASE_CHANNELS = [4, 16]
EPOCHS = 10
BATCH_SIZE = 128
LEARNING_RATE = 2e-3


def main(argv=None):
    parser = recipe_parser(__doc__, name="latent_sweep", epochs=EPOCHS,
                           batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE)
    parser.add_argument("--latent-dims", type=flags.positive_int, nargs="+",
                        default=LATENT_DIMS)
    parser.add_argument("--base-channels", type=flags.positive_int, nargs="+",
                        default=BASE_CHANNELS)
    args = start_run(parser, argv)
    # TensorFlow loads here, after the flags.
    from keras_latent import experiments, paradigms
    from keras_latent.evaluation import metrics as M
    from keras_latent.models import get_preset

    splits, config, output_dir = setup(args)
    test_images = M.to_unit_float(splits.test.images)
    results = {}
    for channels in args.base_channels:
        architecture = get_preset(ARCHITECTURE, base_channels=channels)
        for latent_dim in args.latent_dims:
            print(f"\n--- base channels {channels}, latent dim {latent_dim} ---")
            logged = experiments.tensorboard_subfolder(config, f"c{channels}_z{latent_dim}")
            run = paradigms.train_autoencoder(splits, architecture=architecture,
                                              latent_dim=latent_dim, config=logged)
            probe = paradigms.train_probe(run.model.encoder, splits,
                                          config=paradigms.probe_config(logged))
            reconstructions = M.predict_in_batches(run.model, splits.test.images)
            logits = M.predict_in_batches(probe.model, splits.test.images)
            results.setdefault(f"c={channels}", {})[latent_dim] = {
                "test_mae": M.mean_absolute_error(test_images, reconstructions),
                "test_accuracy": M.accuracy(splits.test.labels, logits),
            }
            print(results[f"c={channels}"][latent_dim])
    _write_report(output_dir, results, config)
    finish(output_dir, {})
    return results


def _write_report(output_dir, results, config):
    """sweep.json, the plot and report.md."""
    from keras_latent.evaluation import plots
    from keras_latent.evaluation.metadata import training_metadata
    from keras_latent.evaluation.report import write_study_report

    plots.plot_sweep(results, path=output_dir / "latent_sweep.png")
    rows = [[name, dim, f"{r['test_mae']:.4f}", f"{100 * r['test_accuracy']:.2f} %"]
            for name, by_dim in results.items() for dim, r in by_dim.items()]
    write_study_report(output_dir, "sweep", results, title="Latent size sweep",
                       header=["base channels", "latent dim", "test MAE",
                               "test probe accuracy"], rows=rows,
                       figures=[("latent_sweep.png", plots.TITLES["sweep"],
                                 plots.CAPTIONS["sweep"])],
                       metadata=training_metadata(config))


if __name__ == "__main__":
    run_recipe(main)
