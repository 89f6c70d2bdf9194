"""Input checks shared by both pipelines (tf.data and arrays), so a bad argument gets the same
message whichever one runs. NumPy only: no TensorFlow, no Keras."""

import numpy as np


def checked_images(images):
    """``images`` as a uint8 NumPy array ``(N, H, W, C)`` with at least one image."""
    if not isinstance(images, np.ndarray) and hasattr(images, "numpy"):
        images = images.numpy()  # an eager tensor
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(
            f"Pipelines take a uint8 image array of shape (N, H, W, C); got shape {images.shape}. "
            "Add a channel axis to grayscale images (images[..., None])."
        )
    if images.dtype != np.uint8:
        raise ValueError(
            f"Pipelines take uint8 images (0..255) and scale them to [0, 1] themselves; got "
            f"{images.dtype}. Pass the arrays of load_dataset() unchanged."
        )
    if len(images) == 0:
        raise ValueError("Pipelines need at least one image; got an empty array.")
    return images


def checked_labels(labels, count):
    """``labels`` as int64 class indices, one per image."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != count:
        raise ValueError(
            f"labels must be a 1-D array with one label per image ({count}); got shape {labels.shape}."
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integer class indices; got dtype {labels.dtype}.")
    return labels.astype(np.int64)


def checked_batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def checked_normalize(normalize, channels):
    """``(mean, std)`` as float32 arrays that broadcast over channels, or None."""
    if normalize is None:
        return None
    try:
        mean, std = (np.asarray(v, np.float32).reshape(-1) for v in normalize)
    except (TypeError, ValueError):
        raise ValueError(f"normalize must be (mean, std), got {normalize!r}") from None
    if mean.size not in (1, channels) or std.size not in (1, channels):
        raise ValueError(f"normalize mean/std need 1 or {channels} values, got {normalize!r}")
    if np.any(std <= 0):
        raise ValueError(f"normalize std must be positive, got {std.tolist()}")
    return mean, std


def checked_contrastive(images, batch_size, augment):
    """What NT-Xent needs of a contrastive pipeline: full batches of 2+ images, two views."""
    if batch_size < 2:
        raise ValueError(
            f"contrastive_dataset needs batch_size >= 2, got {batch_size}: NT-Xent needs at least "
            "2 images per batch (each image's negatives are the other images of its batch)."
        )
    if len(images) < batch_size:
        raise ValueError(
            f"contrastive_dataset got {len(images)} images, fewer than batch_size={batch_size}; "
            "with drop_remainder it would yield nothing. Lower batch_size or pass more images."
        )
    if augment is None:
        raise ValueError(
            "contrastive_dataset needs an augmentation (two identical views teach nothing); "
            "pass augment=build_augmentation(dataset, 'simclr')."
        )


def checked_prediction_array(array, batch_size):
    """Any in-memory array with at least one row, for ``prediction_dataset``."""
    array = np.asarray(array)
    checked_batch_size(batch_size)
    if len(array) == 0:
        raise ValueError("no images to run the model on.")
    return array
