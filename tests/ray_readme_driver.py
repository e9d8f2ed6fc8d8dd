"""Runs the README's Ray script on a local 3-CPU Ray instance: `python ray_readme_driver.py EMBED_PY ARGS...`.

tests/corpus/test_ray_encoder.py runs this in a process of its own, so Ray's state, logging and token settings
stay out of the test process, and a hang ends with a timeout instead of the test run. The script runs
unchanged (`runpy`), with three additions around it:

* `ray.init()` starts a new local instance with 3 CPUs (the script's pool rule gives 2 actors and leaves
  one CPU for reads and writes) instead of joining whatever cluster the machine runs;
* Ray Data gives up after 120 s without progress (`ExecutionTimeoutError`) instead of its 30 minutes,
  and a Ray deprecation, warned or logged, fails the run;
* the script's `Longformer2VecBatchEncoder` is a subclass that fails in the actor unless ONNX Runtime
  got as many intra-op threads as the CPUs Ray reserved for the actor.
"""

from __future__ import annotations

import logging
import runpy
import sys
import warnings

import ray
import ray.data
from ray.util.annotations import RayDeprecationWarning

import longformer2vec
from longformer2vec.ray_encoder import Longformer2VecBatchEncoder

NO_PROGRESS_TIMEOUT_S = 120
LOCAL_CPUS = 3


class ThreadCheckingEncoder(Longformer2VecBatchEncoder):
    """Refuses to start unless the ONNX session runs on the actor's reserved CPUs."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
        threads = self.model._session.session.get_session_options().intra_op_num_threads
        if cpus is None or threads != max(1, int(cpus)):
            raise AssertionError(f"actor reserved {cpus} CPUs but ONNX Runtime runs {threads} threads")


class DeprecationLog(logging.Handler):
    """Keeps Ray Data's log records that call something deprecated (`concurrency=` is only logged)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "deprecated" in record.getMessage().lower():
            self.messages.append(record.getMessage())


def main(script: str, args: list[str]) -> int:
    start_ray = ray.init

    def local_instance(*_args, **_kwargs):
        return start_ray(address="local", num_cpus=LOCAL_CPUS, include_dashboard=False)

    ray.init = local_instance
    ray.data.DataContext.get_current().execution_no_progress_timeout_s = NO_PROGRESS_TIMEOUT_S
    longformer2vec.Longformer2VecBatchEncoder = ThreadCheckingEncoder  # what `from ... import` finds
    deprecations = DeprecationLog()
    logging.getLogger("ray.data").addHandler(deprecations)
    sys.argv = [script, *args]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RayDeprecationWarning)
            runpy.run_path(script, run_name="__main__")
    finally:
        ray.shutdown()
    if deprecations.messages:
        print("Ray deprecation: " + " | ".join(deprecations.messages), file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
