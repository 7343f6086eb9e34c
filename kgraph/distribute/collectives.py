"""Collectives: one `Communicator` interface (allreduce, broadcast, barrier, allgather).

Backends:

- `InProcessGroup(n).communicators()`: n ranks that are threads of one process (the replicas
  of `MirroredStrategy`). A collective completes when every rank has called it; the reduction
  runs once, in the last thread to arrive, and every rank reads the same result.
- `MPICommunicator()`: one rank per process over MPI (mpi4py; the `mpich` wheel provides the
  library). Used by `MultiWorkerMirroredStrategy`.
- `NCCLCommunicator`: a marked stub. NCCL needs GPUs; nothing on this machine can test it.

`allreduce_fused` packs many arrays (a model's gradients) into few contiguous buckets, one
per dtype and at most `bucket_bytes` each, so a step makes a few large all-reduces instead
of one small one per variable.
"""
from __future__ import annotations

import threading

import numpy as np

#: The default size of one fused all-reduce (bytes), as in PyTorch DDP's 25 MB buckets.
BUCKET_BYTES = 25 * 2 ** 20


class CollectiveError(RuntimeError):
    """A collective failed: a rank left, or the ranks called different collectives."""


class Communicator:
    """A group of `size` ranks; this object is rank `rank` of it.

    Every rank must call the same collectives in the same order. Arrays are numpy arrays;
    results are new arrays (inputs are not modified).
    """

    rank = 0
    size = 1

    def allreduce(self, array, op="sum"):
        """The element-wise `op` ("sum", "max" or "min") of `array` over all ranks."""
        raise NotImplementedError

    def broadcast(self, array, root=0):
        """Rank `root`'s `array`, on every rank (others pass an array of the same shape or
        None)."""
        raise NotImplementedError

    def allgather(self, array):
        """The list of every rank's `array`, in rank order."""
        raise NotImplementedError

    def barrier(self):
        """Return when every rank has called `barrier`."""
        raise NotImplementedError


_REDUCERS = {"sum": np.add, "max": np.maximum, "min": np.minimum}


def _reducer(op):
    if op not in _REDUCERS:
        raise ValueError(f"Unknown reduction op: op={op!r}; expected one of "
                         f"{sorted(_REDUCERS)}")
    return _REDUCERS[op]


class InProcessGroup:
    """`size` ranks that are threads of this process, meeting at a barrier per collective.

    Args:
        size: number of ranks (threads).
        timeout: seconds a rank waits for the others before the collective fails.
        after_reduce: optional function applied to every all-reduce result once, before any
            rank reads it (`MultiWorkerMirroredStrategy` sums across processes there).
    """

    def __init__(self, size, timeout=600.0, after_reduce=None):
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"InProcessGroup: size must be a positive integer. Received: "
                             f"size={size!r}")
        self.size = size
        self.timeout = timeout
        self.after_reduce = after_reduce
        self._slots = [None] * size
        self._result = None
        self._combine = None
        self._barrier = threading.Barrier(size, action=self._run_combine, timeout=timeout)

    def communicators(self):
        return [InProcessCommunicator(self, rank) for rank in range(self.size)]

    def _run_combine(self):
        self._result = self._combine(list(self._slots)) if self._combine else None

    def exchange(self, rank, value, combine):
        """Deposit `value`; once every rank has, `combine(all values)` runs once; its result
        is returned to every rank."""
        self._slots[rank] = value
        self._combine = combine
        try:
            self._barrier.wait()
            result = self._result
            self._barrier.wait()  # nobody starts the next collective before all have read
        except threading.BrokenBarrierError:
            raise CollectiveError(f"In-process collective: a rank did not arrive within "
                                  f"{self.timeout} s (or failed); rank {rank} gives up") from None
        return result

    def abort(self):
        """Release every waiting rank with a CollectiveError (a replica failed)."""
        self._barrier.abort()


class InProcessCommunicator(Communicator):
    """Rank `rank` of an `InProcessGroup`."""

    def __init__(self, group, rank):
        self.group, self.rank, self.size = group, rank, group.size

    def allreduce(self, array, op="sum"):
        reduce = _reducer(op)

        def combine(values):
            total = np.array(values[0], copy=True)
            for v in values[1:]:
                reduce(total, v, out=total)
            return self.group.after_reduce(total, op) if self.group.after_reduce else total
        return self.group.exchange(self.rank, np.asarray(array), combine)

    def broadcast(self, array, root=0):
        return self.group.exchange(self.rank, array, lambda values: values[root])

    def allgather(self, array):
        return self.group.exchange(self.rank, np.asarray(array), list)

    def barrier(self):
        self.group.exchange(self.rank, None, lambda values: None)


class MPICommunicator(Communicator):
    """One rank per process over MPI (`mpi4py`). Launch the processes with
    `mpiexec -n N python -m mpi4py script.py` (or `kgraph launch -n N script.py`), so that an
    exception in one rank aborts the whole job instead of leaving the others waiting."""

    def __init__(self, comm=None):
        try:
            from mpi4py import MPI
        except ImportError as e:
            raise ImportError("MPICommunicator needs mpi4py and an MPI library: "
                              "pip install 'kgraph[distributed]' (mpi4py + the mpich "
                              "wheel)") from e
        self._mpi = MPI
        self.comm = comm or MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()

    def allreduce(self, array, op="sum"):
        array = np.ascontiguousarray(array)
        out = np.empty_like(array)
        mpi_op = {"sum": self._mpi.SUM, "max": self._mpi.MAX, "min": self._mpi.MIN}
        _reducer(op)
        self.comm.Allreduce(array, out, op=mpi_op[op])
        return out

    def broadcast(self, array, root=0):
        return self.comm.bcast(array, root=root)

    def allgather(self, array):
        return self.comm.allgather(np.asarray(array))

    def barrier(self):
        self.comm.Barrier()


class NCCLCommunicator(Communicator):
    """STUB: NCCL all-reduce between GPUs. Not implemented: it needs CUDA devices, and no
    machine this project tests on has more than one. Constructing it raises."""

    def __init__(self, *args, **kwargs):
        raise NotImplementedError("NCCLCommunicator is a stub: kgraph has no NCCL backend yet "
                                  "(no multi-GPU machine to test it on). Use the in-process "
                                  "or MPI communicator.")


def allreduce_fused(comm, arrays, op="sum", bucket_bytes=BUCKET_BYTES):
    """All-reduce a list of arrays as few contiguous buckets (one dtype each, at most
    `bucket_bytes` unless one array is larger); returns the reduced arrays in order."""
    out = [None] * len(arrays)
    for bucket in buckets(arrays, bucket_bytes):
        flat = np.concatenate([np.ravel(arrays[i]) for i in bucket])
        reduced = comm.allreduce(flat, op)
        offset = 0
        for i in bucket:
            n = np.size(arrays[i])
            out[i] = reduced[offset:offset + n].reshape(np.shape(arrays[i]))
            offset += n
    return out


def buckets(arrays, bucket_bytes=BUCKET_BYTES):
    """Lists of indices into `arrays`: same dtype within a list, in order, each list's bytes
    at most `bucket_bytes` (an array larger than that gets a list of its own)."""
    if bucket_bytes <= 0:
        raise ValueError(f"bucket_bytes must be positive. Received: bucket_bytes={bucket_bytes}")
    open_buckets, done = {}, []
    for i, a in enumerate(arrays):
        a = np.asarray(a)
        indices, size = open_buckets.get(a.dtype.str, ([], 0))
        if indices and size + a.nbytes > bucket_bytes:
            done.append(indices)
            indices, size = [], 0
        open_buckets[a.dtype.str] = (indices + [i], size + a.nbytes)
    done += [indices for indices, _ in open_buckets.values() if indices]
    return done
