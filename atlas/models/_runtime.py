"""TensorFlow's process settings for a trial: seeds, op determinism, thread pools, GPU memory growth.

These settings belong to the process, not to a model: TensorFlow has one set of thread pools and one view of
each GPU per process. :func:`configure` applies them and says plainly when one can no longer change.
``KerasModel.fit`` calls it with its ``FitOptions`` (``seed``, ``threads``); a worker that runs trials may
call it once at start.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from atlas.exceptions import ConfigError


@dataclass(frozen=True)
class RuntimeReport:
    """What :func:`configure` found and did.

    Attributes:
        seed: the seed set for Python, NumPy, TensorFlow and Keras.
        intra_op_threads: TensorFlow's intra-op thread count now in force (0: TensorFlow's choice).
        inter_op_threads: its inter-op thread count now in force (0: TensorFlow's choice).
        gpus: the GPUs TensorFlow sees.
        memory_growth: per GPU, whether its memory grows on demand (several trials can share it).
    """

    seed: int
    intra_op_threads: int
    inter_op_threads: int
    gpus: tuple[str, ...] = ()
    memory_growth: tuple[bool, ...] = ()


def configure(seed: int, threads: int = 0, *, gpu_memory_growth: bool = True,
              deterministic: bool = True) -> RuntimeReport:
    """Seeds every random generator and sets TensorFlow's threads and GPU memory growth for this process.

    Call it before building a model: the seed fixes the initial weights, dropout masks and batch order, and
    with ``deterministic`` TensorFlow picks deterministic kernels, so two CPU runs with one seed give the same
    predictions.

    Threads and memory growth can only be set before TensorFlow runs its first operation (it creates its
    thread pools and GPU contexts then, once per process). Asking again for what is already in force does
    nothing; asking for something else afterwards leaves the setting as it is and warns (``RuntimeWarning``)
    instead of failing the trial. Start each trial's process with the settings it needs: a worker running
    trials side by side calls ``configure(seed, threads=1)`` before any model work, so trials do not
    oversubscribe the cores.

    Example:
        >>> report = configure(seed=7)
        >>> report.seed, report.gpus if not report.gpus else "a GPU machine"
        (7, ())

    Args:
        seed: a whole number >= 0, for Python's ``random``, NumPy, TensorFlow and Keras.
        threads: TensorFlow's intra-op and inter-op threads; 0 keeps TensorFlow's choice (all cores).
        gpu_memory_growth: let each GPU's memory grow on demand instead of reserving it all up front, so
            several trials share one GPU. Without a GPU it does nothing.
        deterministic: use deterministic TensorFlow kernels (``enable_op_determinism``); on a GPU this can be
            slower, and an op without a deterministic kernel raises.

    Returns:
        A :class:`RuntimeReport` of the settings in force.

    Raises:
        ConfigError: ``seed`` or ``threads`` is not a whole number >= 0.
    """
    for name, value in (("seed", seed), ("threads", threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            msg = f"configure: {name} must be a whole number >= 0, got {name}={value!r}"
            raise ConfigError(msg)
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")  # GPUs and threads first: both must precede TF's first op
    growth = []
    for gpu in gpus:
        if gpu_memory_growth and not tf.config.experimental.get_memory_growth(gpu):
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:  # the GPU is initialized already: memory growth is fixed for this process
                msg = (f"GPU {gpu.name} is already initialized, so its memory growth stays off in this "
                       f"process: call atlas.models.configure(...) before any TensorFlow work, or set "
                       f"TF_FORCE_GPU_ALLOW_GROWTH=true in the environment")
                warnings.warn(msg, RuntimeWarning, stacklevel=2)
        growth.append(bool(tf.config.experimental.get_memory_growth(gpu)))
    if threads:
        _set_threads(tf, threads)
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    return RuntimeReport(seed=seed, intra_op_threads=tf.config.threading.get_intra_op_parallelism_threads(),
                         inter_op_threads=tf.config.threading.get_inter_op_parallelism_threads(),
                         gpus=tuple(gpu.name for gpu in gpus), memory_growth=tuple(growth))


def _set_threads(tf, threads: int) -> None:
    threading = tf.config.threading
    current = (threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads())
    if current == (threads, threads):
        return
    try:
        threading.set_intra_op_parallelism_threads(threads)
        threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow's thread pools exist already
        intra = threading.get_intra_op_parallelism_threads()
        inter = threading.get_inter_op_parallelism_threads()
        shown = "TensorFlow's choice" if (intra, inter) == (0, 0) else f"intra-op {intra}, inter-op {inter}"
        msg = (f"threads={threads} cannot apply: TensorFlow's thread pools already run in this process "
               f"({shown}); set threads before the process's first TensorFlow operation (call "
               f"atlas.models.configure(seed, threads={threads}) first), or run each trial in its own "
               f"process")
        warnings.warn(msg, RuntimeWarning, stacklevel=3)


__all__ = ["RuntimeReport", "configure"]
