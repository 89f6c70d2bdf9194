"""What does a classification-guided latent space keep of the image?

Trains (or loads) a classification-guided encoder and an autoencoder, then trains only a decoder
on the frozen classifier encoder, and compares the test reconstruction MAE of the two decoders,
with their reconstructions side by side.

    python recipes/decoder_probe.py [--dataset D] [--classifier PATH] [--autoencoder PATH] [--quick]
"""

from _plumbing import finish, recipe_parser, run_recipe, setup, start_run

# Hyperparameters (edit freely; the same for every --dataset).
ARCHITECTURE = "mnist_conv"
LATENT_DIM = 128
EPOCHS = 10
BATCH_SIZE = 128
LEARNING_RATE = 2e-3


def main(argv=None):
    parser = recipe_parser(__doc__, name="decoder_probe", epochs=EPOCHS,
                           batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE)
    parser.add_argument("--classifier", help="a saved classifier.keras whose encoder to decode")
    parser.add_argument("--autoencoder", help="a saved autoencoder.keras to compare with")
    args = start_run(parser, argv)
    # TensorFlow loads here, after the flags.
    from keras_latent import paradigms
    from keras_latent.evaluation import metrics as M
    from keras_latent.evaluation import plots
    from keras_latent.models import load_model, save_model_atomic

    splits, config, output_dir = setup(args)
    kwargs = dict(architecture=ARCHITECTURE, latent_dim=LATENT_DIM, config=config)
    classifier = (load_model(args.classifier) if args.classifier
                  else paradigms.train_classifier(splits, **kwargs).model)
    autoencoder = (load_model(args.autoencoder) if args.autoencoder
                   else paradigms.train_autoencoder(splits, **kwargs).model)
    decoded = paradigms.train_decoder(classifier.encoder, splits, architecture=ARCHITECTURE,
                                      config=config).model
    save_model_atomic(decoded, output_dir / "classifier_encoder_decoder.keras")

    images = M.to_unit_float(splits.test.images)
    results = {}
    for name, model in {"autoencoder": autoencoder, "classifier encoder + decoder": decoded}.items():
        reconstructions = M.predict_in_batches(model, splits.test.images)
        results[name] = M.mean_absolute_error(images, reconstructions)
        slug = name.split()[0]
        plots.plot_reconstructions(images, reconstructions, seed=args.seed,
                                   path=output_dir / f"reconstructions_{slug}.png")
    _write_report(output_dir, results, config)
    finish(output_dir, {})
    return results


def _write_report(output_dir, results, config):
    """decoder_probe.json and report.md (table and reconstructions)."""
    from keras_latent.evaluation import plots
    from keras_latent.evaluation.metadata import training_metadata
    from keras_latent.evaluation.report import write_study_report

    figures = [(f"reconstructions_{name.split()[0]}.png", name,
                f"{plots.CAPTIONS['reconstructions']} Decoder: {name}.") for name in results]
    write_study_report(output_dir, "decoder_probe", results,
                       title="Decoder probe: reconstruction MAE on the test set",
                       header=["latent space", "test MAE"],
                       rows=[[name, f"{mae:.4f}"] for name, mae in results.items()],
                       figures=figures, metadata=training_metadata(config))


if __name__ == "__main__":
    run_recipe(main)
