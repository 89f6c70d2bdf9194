"""``python -m keras_latent`` is the same as the ``keras-latent`` console script."""

from keras_latent.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
