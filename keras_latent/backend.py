"""The backend-specific code of keras-latent, all of it, kept to what Keras itself needs.

Everything else is written once in ``keras.ops`` and runs on the TensorFlow, JAX and PyTorch
backends. What differs is what Keras' own per-backend guides show (custom ``train_step`` in
TensorFlow / JAX / PyTorch): how a gradient is taken and state is threaded through a step, how
a function is compiled, which devices there are, and data parallelism. The backend is chosen
the Keras way (``KERAS_BACKEND``, ``~/.keras/keras.json``) or with ``--backend``
(``keras_latent.flags.choose_backend``), before Keras is imported.
"""

from __future__ import annotations

import functools
import importlib.util

import keras


def name() -> str:
    """The Keras backend this process runs: "tensorflow", "jax" or "torch"."""
    return keras.backend.backend()


def tensorflow_installed() -> bool:
    """Whether TensorFlow can be imported (without importing it): tf.data, TensorBoard event
    files and ``tf.distribute`` need it; the models and the array pipelines do not."""
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):  # a module blocked with sys.modules["tensorflow"] = None
        return False


def compile_function(function):
    """``function`` (keras.ops on tensors in, tensors out) compiled for this backend: XLA on
    TensorFlow and JAX; eager on PyTorch, where ``torch.compile``'s start-up outweighs it."""
    if name() == "jax":
        import jax

        return jax.jit(function)
    if name() == "tensorflow":
        import tensorflow as tf

        return tf.function(function, jit_compile=True)
    return function


# -- devices -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def gpus() -> tuple:
    """``(name, (major, minor))`` per visible CUDA GPU, as this backend sees them."""
    found = []
    if name() == "jax":
        import jax

        for device in jax.devices():
            if device.platform == "gpu":
                capability = getattr(device, "compute_capability", "0.0")
                found.append((device.device_kind, _capability(capability)))
    elif name() == "torch":
        import torch

        for index in range(torch.cuda.device_count()):
            found.append((torch.cuda.get_device_name(index),
                          tuple(torch.cuda.get_device_capability(index))))
    elif tensorflow_installed():
        import tensorflow as tf

        for gpu in tf.config.list_physical_devices("GPU"):
            details = tf.config.experimental.get_device_details(gpu)
            found.append((details.get("device_name", gpu.name),
                          tuple(details.get("compute_capability", (0, 0)))))
    return tuple(found)


def _capability(text) -> tuple:
    major, _, minor = str(text).partition(".")
    return (int(major or 0), int(minor or 0))


def data_parallel():
    """Data parallelism over this machine's devices with Keras' distribution API (JAX): each
    batch is split over the devices and one program sees the whole batch, so NT-Xent contrasts
    every image with the global batch and batch norm normalises over it."""
    devices = keras.distribution.list_devices()
    return keras.distribution.DataParallel(devices=devices)


def sync_variables(model) -> None:
    """Make ``model``'s variables hold the training state, from inside a batch callback that
    reads or assigns them: JAX's ``fit`` keeps the state apart from the variables until the
    epoch ends (``jax_state_sync`` is Keras' own hook for such callbacks)."""
    if name() == "jax":
        model.jax_state_sync()


def distribute_strategy(model):
    """The ``tf.distribute`` strategy ``model`` was built under (None on other backends)."""
    return getattr(model, "distribute_strategy", None) if name() == "tensorflow" else None


def num_replicas() -> int:
    """Replicas sharing this step under ``tf.distribute`` (1 elsewhere: on JAX one program
    sees the global batch)."""
    if name() != "tensorflow":
        return 1
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    return 1 if context is None else context.num_replicas_in_sync


def other_replicas_rows(local):
    """The rows of ``local`` held by the other ``tf.distribute`` replicas, in replica order
    (``all_gather``; its gradient sends each replica its share back). Only under several
    replicas, which only TensorFlow has (see ``num_replicas``)."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    gathered = context.all_gather(local, axis=0)
    sizes = context.all_gather(tf.shape(local)[:1], axis=0)
    start = tf.reduce_sum(sizes[: context.replica_id_in_sync_group])
    return tf.concat([gathered[:start], gathered[start + tf.shape(local)[0]:]], axis=0)


# -- a custom training step --------------------------------------------------------------------
#
# ``model.step_losses(data, training)`` returns ``(loss, logs)`` in keras.ops and
# ``model.record_metrics(loss, logs)`` updates the model's metrics and returns their results;
# the functions below are the rest of a step, as Keras' guides write it for each backend.


def train_step(model, *args):
    """One optimiser step: ``train_step(data)`` on TensorFlow / PyTorch, ``train_step(state,
    data)`` -> ``(logs, state)`` on JAX (the signatures each backend's trainer calls)."""
    return _STEPS[name()][0](model, *args)


def test_step(model, *args):
    """The same losses without a gradient (``test_step``'s signature per backend)."""
    return _STEPS[name()][1](model, *args)


def _tensorflow_train_step(model, data):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss, logs = model.step_losses(data, training=True)
        # Replica gradients are summed by the optimizer: scale so they add up to the mean.
        replicas = num_replicas()
        scaled = model.optimizer.scale_loss(loss / replicas if replicas > 1 else loss)
    variables = model.trainable_variables
    model.optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
    return model.record_metrics(loss, logs)


def _plain_test_step(model, data):
    loss, logs = model.step_losses(data, training=False)
    return model.record_metrics(loss, logs)


def _torch_train_step(model, data):
    import torch

    model.zero_grad()
    loss, logs = model.step_losses(data, training=True)
    model.optimizer.scale_loss(loss).backward()
    variables = list(model.trainable_weights)
    gradients = [variable.value.grad for variable in variables]
    with torch.no_grad():
        model.optimizer.apply(gradients, variables)
    return model.record_metrics(loss, logs)


def _jax_train_step(model, state, data):
    import jax

    trainable, non_trainable, optimizer_variables, metrics_variables = state

    def scaled_loss(trainable, non_trainable):
        (loss, logs), non_trainable = _stateless(
            model, trainable, non_trainable, lambda: model.step_losses(data, training=True))
        mapping = list(zip(model.optimizer.variables, optimizer_variables))
        with keras.StatelessScope(state_mapping=mapping):
            scaled = model.optimizer.scale_loss(loss)
        return scaled, (loss, logs, non_trainable)

    gradient_fn = jax.value_and_grad(scaled_loss, has_aux=True)
    (_, (loss, logs, non_trainable)), gradients = gradient_fn(trainable, non_trainable)
    trainable, optimizer_variables = model.optimizer.stateless_apply(
        optimizer_variables, gradients, trainable)
    logs, metrics_variables = _stateless_metrics(model, metrics_variables, loss, logs)
    return logs, (trainable, non_trainable, optimizer_variables, metrics_variables)


def _jax_test_step(model, state, data):
    trainable, non_trainable, metrics_variables = state
    (loss, logs), non_trainable = _stateless(
        model, trainable, non_trainable, lambda: model.step_losses(data, training=False))
    logs, metrics_variables = _stateless_metrics(model, metrics_variables, loss, logs)
    return logs, (trainable, non_trainable, metrics_variables)


def _stateless(model, trainable, non_trainable, compute):
    """``compute()`` with the model's variables read from the given values; returns its result
    and the non-trainable values it left (batch-norm statistics, seed states), as
    ``Layer.stateless_call`` does for ``call``."""
    mapping = [*zip(model.trainable_variables, trainable),
               *zip(model.non_trainable_variables, non_trainable)]
    with keras.StatelessScope(state_mapping=mapping) as scope:
        result = compute()
    return result, [scope.get_current_value(v) for v in model.non_trainable_variables]


def _stateless_metrics(model, metrics_variables, loss, logs):
    mapping = list(zip(model.metrics_variables, metrics_variables))
    with keras.StatelessScope(state_mapping=mapping) as scope:
        results = model.record_metrics(loss, logs)
    return results, [scope.get_current_value(v) for v in model.metrics_variables]


_STEPS = {
    "tensorflow": (_tensorflow_train_step, _plain_test_step),
    "jax": (_jax_train_step, _jax_test_step),
    "torch": (_torch_train_step, _plain_test_step),
}
