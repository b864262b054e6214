"""Where the runner's jobs execute: in this process, one after the other, or on a Dask cluster.

Both pools take :class:`hessinit.book.execute.Job` objects with ``submit`` and hand back
``(job id, Outcome)`` pairs with ``next_done`` as jobs finish; both call
:func:`hessinit.book.execute.execute_job`, so a run executes the same way everywhere.

- :class:`SerialPool`: today's behaviour, one run at a time in this process.
- :class:`DaskPool`: a local Dask cluster of ``jobs`` worker processes (one thread each, and
  one TensorFlow thread per run unless told otherwise), or an existing scheduler at an address
  (``dask scheduler``, or a cluster of dask-jobqueue). A worker that dies while running a job
  has it rerun on another worker by the scheduler, up to ``allowed_failures`` times; the run then
  fails with the error.

Imports: the standard library and :mod:`hessinit.book.execute`; ``distributed`` when a Dask
pool is opened.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import replace

from .execute import CodeMismatchError, KernelError, Outcome, execute_job


class SerialPool:
    """Execute jobs in this process, in the order they are submitted, one at a time.

    Example:
        >>> pool = SerialPool()
        >>> with pool:
        ...     pool.capacity, pool.dashboard, pool.pending()
        (1, None, 0)
    """

    capacity = 1
    dashboard = None

    def __init__(self):
        self._queue = []

    def __enter__(self):
        """Nothing to start: jobs run in this process."""
        return self

    def __exit__(self, *exc):
        """Forget any queued job."""
        self._queue.clear()

    def submit(self, job):
        """Queue ``job``; it executes when :meth:`next_done` is called."""
        self._queue.append(job)

    def pending(self):
        """The number of jobs submitted and not yet handed back."""
        return len(self._queue)

    def next_done(self):
        """Execute the oldest queued job and return ``(job id, Outcome)``.

        The code hash is not checked: this process imported the code the client hashed.
        """
        job = self._queue.pop(0)
        return job.id, execute_job(replace(job, code_hash=""))

    def cancel(self):
        """Forget the queued jobs (the one executing was interrupted with it)."""
        self._queue.clear()


class DaskPool:
    """Execute jobs on a Dask cluster: a local one of ``jobs`` processes, or ``scheduler``'s.

    Args:
        jobs: Worker processes of a local cluster (ignored with ``scheduler``).
        scheduler: The address of a running Dask scheduler (``tcp://host:8786``) or the path
            of its scheduler file (``--scheduler-file``).
        allowed_failures: How many times a job is restarted after its worker died (the local
            cluster's ``distributed.scheduler.allowed-failures``; an external scheduler uses
            its own configuration).

    Attributes:
        dashboard: The Dask dashboard's address, once opened.
    """

    capacity = math.inf

    def __init__(self, jobs=None, scheduler=None, allowed_failures=2):
        if not scheduler and not (jobs and jobs >= 1):
            raise ValueError(f"a local Dask cluster needs jobs >= 1, got {jobs!r}")
        self.jobs, self.scheduler, self.allowed_failures = jobs, scheduler, allowed_failures
        self.dashboard = None
        self.client = self.cluster = None
        self._futures = {}

    def __enter__(self):
        """Start the local cluster or connect to the scheduler; set :attr:`dashboard`."""
        import logging

        import dask
        from distributed import Client, LocalCluster, as_completed

        try:
            if self.scheduler:
                address = str(self.scheduler)
                if address.endswith(".json"):
                    self.client = Client(scheduler_file=address, timeout="30s")
                else:
                    self.client = Client(address, timeout="30s")
            else:
                config = {"distributed.scheduler.allowed-failures": self.allowed_failures}
                with dask.config.set(config):
                    self.cluster = LocalCluster(
                        n_workers=self.jobs,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address="127.0.0.1:0",
                        silence_logs=logging.ERROR,
                    )
                self.client = Client(self.cluster)
        except (OSError, TimeoutError, RuntimeError) as err:
            self.__exit__()
            where = (
                f"reach the Dask scheduler at {self.scheduler}"
                if self.scheduler
                else f"start a local Dask cluster of {self.jobs} processes"
            )
            raise RuntimeError(
                f"could not {where} ({type(err).__name__}: {err}); check the address, or build "
                "without --jobs/--scheduler"
            ) from err
        self.dashboard = self.client.dashboard_link
        self._done = as_completed()
        return self

    def __exit__(self, *exc):
        """Close the client (and the local cluster with its workers)."""
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def submit(self, job):
        """Submit ``job`` to the cluster as the task ``hessinit-run-<run id>-<random>``."""
        # A key of its own: two builds on one scheduler never share a result.
        key = f"hessinit-run-{job.id}-{uuid.uuid4().hex[:12]}"
        future = self.client.submit(execute_job, job, key=key, pure=False)
        self._futures[future.key] = (future, job.id)
        self._done.add(future)

    def pending(self):
        """The number of jobs submitted and not yet handed back."""
        return len(self._futures)

    def next_done(self):
        """Wait for any job to finish and return ``(job id, Outcome)``.

        A job whose workers kept dying is a ``failed`` outcome (``KilledWorker``); a code or
        kernel mismatch on a worker is raised, since every later job would meet it too.

        Raises:
            CodeMismatchError: If a worker runs other ``hessinit`` code than the client.
            KernelError: If a worker's ``hessinit`` kernel runs another Python.
        """
        from distributed import KilledWorker

        future = next(self._done)
        _, run_id = self._futures.pop(future.key)
        try:
            return run_id, future.result()
        except (CodeMismatchError, KernelError):
            raise
        except KilledWorker as err:
            # The scheduler's limit, not ours: an external scheduler has its own configuration.
            message = f"KilledWorker: each worker that ran it died ({err})"
            return run_id, Outcome(run_id, "failed", error=message)
        except Exception as err:  # noqa: BLE001 - one run's failure is its outcome
            return run_id, Outcome(run_id, "failed", error=f"{type(err).__name__}: {err}")

    def cancel(self):
        """Cancel every job not handed back yet (Ctrl-C); their runs are redone next time."""
        futures = [f for f, _ in self._futures.values()]
        if futures:
            self.client.cancel(futures, force=True)
        self._futures.clear()
