"""What one model run may use: the sandbox's limits and the memory budget behind them.

Memory budget (measured with TensorFlow 2.21 / Keras 3.15 on x86-64): importing TensorFlow
reserves about 1.4 GB of address space and about 660 MB resident (mostly shared library pages,
which several children share). MALLOC_ARENA_MAX=2 and 1 inter-op / 2 intra-op threads keep a
small model's run at about 1.5 GB of address space. RLIMIT_AS therefore defaults to 2 GiB,
leaving about 500 MB for the model's weights, its activations and the features; TensorFlow
cannot import at all under 1 GiB and its thread pools fail at 2 GiB without those settings.
A worker with the warm pool holds one idle child (~700 MB resident) plus, during a job, the
job's child (~700 MB plus the model and features): plan about 1.5 GB per model worker.
"""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True)
class SandboxLimits:
    memory_bytes: int = 2 * GiB  # RLIMIT_AS of the child, TensorFlow included (~1.4 GB)
    cpu_seconds: int = 120  # RLIMIT_CPU for the job, all threads, after TensorFlow's import
    wall_seconds: float = 180.0  # from sending the job to its reply
    batch_size: int = 1024
    max_model_bytes: int = 100 * MiB
