"""Training across devices and machines: the strategy a config names (``tf.distribute`` on
TensorFlow, Keras' ``DataParallel`` on JAX), and where each process writes (only the chief
keeps files), as the TensorFlow multi-worker guide prescribes."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

# STRATEGIES: the names ``TrainingConfig(strategy=...)`` and ``--strategy`` accept, kept with
# the TensorFlow-free flags so that one list serves both.
from keras_latent.flags import STRATEGIES

_EXAMPLE = ('TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}\'')
_JOBS = ("chief", "worker")


def parse_tf_config(text: str | None) -> dict:
    """``TF_CONFIG``'s JSON, checked: a bad value fails here in one line, not as a hang or a
    gRPC trace once the workers try to meet."""
    if not text or not text.strip():
        raise ValueError(f"strategy 'multi_worker' needs the TF_CONFIG environment variable "
                         f"(the cluster and this process's place in it), e.g. {_EXAMPLE}")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error.msg} at character {error.pos}); "
                         f"expected e.g. {_EXAMPLE}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not any(job in cluster for job in _JOBS):
        raise ValueError('TF_CONFIG needs a "cluster" object with a "worker" (and optionally a '
                         f'"chief") list of "host:port" addresses, e.g. {_EXAMPLE}')
    for job, addresses in cluster.items():
        _check_job(job, addresses)
    _check_task(config.get("task"), cluster)
    return config


def _check_job(job, addresses):
    if job not in _JOBS:
        raise ValueError(f"TF_CONFIG cluster job {job!r} is not used by "
                         'MultiWorkerMirroredStrategy; use "chief" and "worker"')
    if not isinstance(addresses, list) or not addresses:
        raise ValueError(f'TF_CONFIG cluster "{job}" must be a non-empty list of "host:port" '
                         f"addresses, got {addresses!r}")
    for address in addresses:
        host, _, port = str(address).rpartition(":")
        if not isinstance(address, str) or not host or not port.isdigit():
            raise ValueError(f'TF_CONFIG cluster "{job}" has {address!r}, not a "host:port" '
                             "address")
    if job == "chief" and len(addresses) != 1:
        raise ValueError('TF_CONFIG cluster "chief" must list exactly one address, got '
                         f"{addresses!r}")


def _check_task(task, cluster):
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise ValueError('TF_CONFIG needs a "task" object naming this process, e.g. '
                         '"task": {"type": "worker", "index": 0}')
    job, index = task["type"], task["index"]
    if job not in cluster:
        raise ValueError(f"TF_CONFIG task type {job!r} is not a job of its cluster "
                         f"({', '.join(cluster)})")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(cluster[job]):
        raise ValueError(f'TF_CONFIG task index {index!r} is not in [0, {len(cluster[job])}) for '
                         f'the {len(cluster[job])} "{job}" address(es)')


def resolve_strategy(strategy):
    """``None``, a ``tf.distribute.Strategy``, ``"mirrored"`` or ``"multi_worker"`` -> a strategy
    object (or None).

    ``"multi_worker"`` builds ``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``. Names give the
    same object every time in a process: TensorFlow allows one multi-worker runtime per process,
    and a model must be trained under the strategy it was built in. On JAX, ``"mirrored"`` is
    ``keras.distribution.DataParallel`` over the local devices (its ``scope()`` is entered the
    same way); the other backends train on one device.
    """
    if strategy is None or not isinstance(strategy, str):
        return strategy
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(map(repr, STRATEGIES))}, a "
                         f"tf.distribute.Strategy or None, got {strategy!r}")
    import keras

    if keras.backend.backend() != "tensorflow":
        if strategy == "mirrored" and keras.backend.backend() == "jax":
            from keras_latent import backend

            return backend.data_parallel()
        raise ValueError(f"strategy {strategy!r} needs the TensorFlow backend (tf.distribute)"
                         f"{'' if strategy == 'multi_worker' else ' or JAX'}; this run uses "
                         f"{keras.backend.backend()}: drop --strategy or pick --backend "
                         "tensorflow")
    tf_config = None
    if strategy == "multi_worker":
        tf_config = os.environ.get("TF_CONFIG")
        parse_tf_config(tf_config)
    return _built(strategy, tf_config)


@functools.lru_cache(maxsize=None)
def _built(name, tf_config):
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    try:
        with _worker_watchdog(json.loads(tf_config)):
            return _multi_worker_class()()  # reads TF_CONFIG itself; waits for every worker
    except RuntimeError as error:  # "Collective ops must be configured at program startup"
        raise ValueError("MultiWorkerMirroredStrategy must be created before TensorFlow runs "
                         "anything: make TrainingConfig(strategy='multi_worker') first in the "
                         f"program ({error})") from None


#: Seconds a multi-worker run waits for the workers TF_CONFIG names before it ends.
WORKER_TIMEOUT_ENV = "KERAS_LATENT_WORKER_TIMEOUT"
DEFAULT_WORKER_TIMEOUT = 600

#: The watchdog: a second Python that waits for its stdin to close (the wait is over, or this
#: process died) for the timeout, else says so and ends this process with SIGKILL.
_WATCHDOG = """
import os, select, signal, sys
pid, timeout, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
if not select.select([sys.stdin], [], [], timeout)[0]:
    sys.stderr.write(message + "\\n")
    sys.stderr.flush()
    os.kill(pid, signal.SIGKILL)
"""


def worker_timeout() -> float:
    """``KERAS_LATENT_WORKER_TIMEOUT`` in seconds (default 600); a bad value is one line."""
    text = os.environ.get(WORKER_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_WORKER_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{WORKER_TIMEOUT_ENV}={text!r}: expected seconds > 0, e.g. 600")
    return value


@contextlib.contextmanager
def _worker_watchdog(tf_config):
    """Say which workers this process waits for, and end it with one line and exit status
    137 (SIGKILL) if they have not all connected after ``worker_timeout()`` seconds.

    ``MultiWorkerMirroredStrategy()`` blocks in TensorFlow's C++ until every worker of
    TF_CONFIG has registered, silently and (a dead worker) for as long as TensorFlow's own
    timeout, far longer than a user waits. It holds the GIL there: no Python thread or signal
    handler of this process runs, so the watchdog is another process. Nothing is written yet,
    so nothing is lost by the kill.
    """
    timeout = worker_timeout()
    others = ", ".join(_other_workers(tf_config))
    print(f"waiting for the other workers TF_CONFIG names to connect: {others} (for up to "
          f"{timeout:g} s, {WORKER_TIMEOUT_ENV})", flush=True)
    message = (f"error: the workers TF_CONFIG names did not all connect within {timeout:g} s "
               f"(waiting for {others}): start each with the same command and its own "
               f"TF_CONFIG task, or fix TF_CONFIG; {WORKER_TIMEOUT_ENV} sets the wait")
    watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()),
                                 str(timeout), message], stdin=subprocess.PIPE)
    try:
        yield
    finally:
        watchdog.stdin.close()  # the wait is over: the watchdog ends
        watchdog.wait()


def _other_workers(tf_config) -> list:
    """``job index (host:port)`` of every task in TF_CONFIG's cluster but this one."""
    task = tf_config["task"]
    return [f"{job} {index} ({address})"
            for job, addresses in tf_config["cluster"].items()
            for index, address in enumerate(addresses)
            if (job, index) != (task["type"], task["index"])]


def _multi_worker_class():
    import tensorflow as tf

    class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        """TensorFlow's strategy with a ``reduce`` that takes what Keras 3's ``fit`` passes it.

        Across workers (unlike MirroredStrategy) TensorFlow's ``reduce`` rejects a nested
        structure ("Attempt to convert a value (PerReplica...)", the ``(x, y)`` batch Keras
        reduces before the first step) and ``axis=0`` on a scalar (the per-replica metric
        values Keras averages for the logs); keras-team/keras#20585. Here each value is
        reduced on its own, a scalar over the replicas only.
        """

        def reduce(self, reduce_op, value, axis):
            parent = super()

            def one(v):
                if v is None:
                    return None
                scalar = self.experimental_local_results(v)[0].shape.rank == 0
                return parent.reduce(reduce_op, v, None if scalar else axis)

            return tf.nest.map_structure(one, value)

    return MultiWorkerMirroredStrategy


def is_multi_worker(strategy) -> bool:
    """Whether ``strategy`` spans several processes (a multi-worker cluster from TF_CONFIG)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    return resolver is not None and resolver.task_type is not None


def gather_ints(strategy, values) -> list:
    """Every replica's ``values`` (a list of ints), in replica order: a collective op that
    every worker must call."""
    import tensorflow as tf

    local = strategy.experimental_distribute_values_from_function(
        lambda _: tf.constant([[int(v) for v in values]], tf.int64))
    return strategy.gather(local, axis=0).numpy().tolist()


def is_chief(strategy) -> bool:
    """Whether this process keeps the run's files: always, except a non-chief worker."""
    extended = getattr(strategy, "extended", None)  # a tf.distribute strategy's
    return extended is None or bool(extended.should_checkpoint)


def write_path(path, strategy) -> Path:
    """Where this process writes ``path`` (the guide's ``write_filepath``): the path itself on
    the chief; on any other worker the same name in a ``workertemp_<task id>`` folder beside it.

    Every worker must run the same steps (saving and evaluating included) for the collective
    ops to meet, but only the chief's files are kept; a path already inside this worker's
    temporary folder is returned as it is.
    """
    path = Path(path)
    if is_chief(strategy):
        return path
    folder = f"workertemp_{strategy.cluster_resolver.task_id}"
    return path if folder in path.parts else path.parent / folder / path.name


def discard_worker_copy(path, written) -> bool:
    """Delete ``written`` when ``write_path`` moved ``path`` there (a worker's temporary copy),
    and its ``workertemp_<id>`` folder once empty; True if it did."""
    path, written = Path(path), Path(written)
    if written == path:
        return False
    shutil.rmtree(written, ignore_errors=True)
    try:
        written.parent.rmdir()
    except OSError:
        pass  # not empty: another of this worker's copies is still in use
    return True
