"""Every paradigm builds, compiles and trains under a tf.distribute strategy (two logical CPUs)."""

import sys
import textwrap

from tests import processes

SCRIPT = textwrap.dedent(
    """
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    from keras_latent import paradigms
    from keras_latent.data import load_dataset

    tiny = {"kind": "conv", "channels": [4, 8], "kernel_sizes": 3, "strides": 2}
    splits = load_dataset("mnist").limit(256, seed=0)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    config = paradigms.TrainingConfig(epochs=1, batch_size=64, verbose=0, strategy=strategy)
    for train in (paradigms.train_autoencoder, paradigms.train_classifier,
                  paradigms.train_simclr):
        run = train(splits, architecture=tiny, latent_dim=8, config=config)
        assert np.isfinite(run.history["loss"]).all(), (train.__name__, run.history)
        print(train.__name__, "done", flush=True)  # progress, for the test's wait
    print("OK")
    """
)


def test_paradigms_train_under_mirrored_strategy(data_dir, tmp_path):
    # Waits while the child prints a line per paradigm (27 s in all on 2 cores at load average
    # 5; no total bound, which a loaded machine could pass while still working); fails after a
    # long silence.
    process = processes.start([sys.executable, "-c", SCRIPT], tmp_path / "run.log")
    assert processes.wait_while_progressing(process) == 0, processes.output_of(process)
    assert "OK" in processes.output_of(process)
