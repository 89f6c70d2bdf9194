"""Few-shot study: what each representation gives when only N images are labelled.

Probes the frozen encoders of an autoencoder and a SimCLR run (loaded with --autoencoder /
--simclr, or trained here), an untrained encoder, and a classifier trained from scratch, each on
only N labelled training images drawn with the seed (as evenly over classes as possible), and
reports their accuracy on the full test set.

    python recipes/few_shot.py [--dataset D] [--num-labels 100 1000] [--autoencoder PATH]
                               [--simclr PATH]
"""

from _plumbing import finish, recipe_parser, run_recipe, setup, start_run

from keras_latent import flags

# Hyperparameters (edit freely; the same for every --dataset).
ARCHITECTURE = "mnist_conv"
LATENT_DIM = 128
NUM_LABELS = [100]
EPOCHS = 10  # for encoders trained here, when none is given
BATCH_SIZE = 128
LEARNING_RATE = 2e-3


def _encoder(path, train, splits, config):
    from keras_latent.models import load_model

    if path:
        return load_model(path).encoder
    return train(splits, architecture=ARCHITECTURE, latent_dim=LATENT_DIM, config=config).model.encoder


def main(argv=None):
    parser = recipe_parser(__doc__, name="few_shot", epochs=EPOCHS,
                           batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE)
    parser.add_argument("--num-labels", type=flags.positive_int, nargs="+",
                        default=NUM_LABELS)
    parser.add_argument("--autoencoder", help="a saved autoencoder.keras to probe")
    parser.add_argument("--simclr", help="a saved simclr.keras to probe")
    args = start_run(parser, argv)
    # TensorFlow loads here, after the flags.
    from keras_latent import experiments, paradigms
    from keras_latent.evaluation import metrics as M

    splits, config, output_dir = setup(args)
    encoders = {
        "autoencoder + frozen probe": _encoder(args.autoencoder, paradigms.train_autoencoder,
                                               splits, config),
        "SimCLR + frozen probe": _encoder(args.simclr, paradigms.train_simclr, splits,
                                          config.replace(batch_size=max(args.batch_size, 256))),
        "random encoder + frozen probe": paradigms.build_random_encoder(
            splits, ARCHITECTURE, LATENT_DIM, config),
    }
    probe_config = paradigms.probe_config(config)
    results = {}
    for n in args.num_labels:
        row = {}
        for method, encoder in encoders.items():
            logged = experiments.tensorboard_subfolder(probe_config,
                                                      f"{n}_labels/{method.split()[0]}")
            probe = paradigms.train_probe(encoder, splits, num_labels=n, config=logged)
            row[method] = M.accuracy(splits.test.labels,
                                     M.predict_in_batches(probe.model, splits.test.images))
        scratch = paradigms.train_classifier(
            splits, architecture=ARCHITECTURE, latent_dim=LATENT_DIM, num_labels=n,
            config=experiments.tensorboard_subfolder(config, f"{n}_labels/scratch").replace(
                batch_size=min(n, 64)))
        row["classification-guided (from scratch)"] = M.accuracy(
            splits.test.labels, M.predict_in_batches(scratch.model, splits.test.images))
        results[n] = row
        print(f"N={n}: " + ", ".join(f"{k}: {100 * v:.2f} %" for k, v in row.items()))
    _write_report(output_dir, results, config)
    finish(output_dir, {})
    return results


def _write_report(output_dir, results, config):
    """few_shot.json and report.md (the table and the run)."""
    from keras_latent.evaluation.metadata import training_metadata
    from keras_latent.evaluation.report import write_study_report

    methods = list(next(iter(results.values())))
    rows = [[n, *(f"{100 * row[m]:.2f} %" for m in methods)] for n, row in results.items()]
    write_study_report(output_dir, "few_shot", results,
                       title="Few-shot probes (test accuracy on the full test set)",
                       header=["labelled images", *methods], rows=rows,
                       metadata=training_metadata(config))


if __name__ == "__main__":
    run_recipe(main)
