"""The process group and every collective the distributed trainer uses, each with a bounded wait.

:func:`init_distributed` joins the group ``torchrun`` describes in the environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), or makes a group of one without them. The backend is
``gloo`` on CPU and ``nccl`` when the model lives on CUDA (``backend="auto"``); with NCCL the small CPU-side
exchanges (step counters, evaluation results, checkpoint shards) go through a second, gloo group.

Every collective waits at most ``timeout_s``; a peer that died (its sockets close) fails it at once. Either
way it raises :class:`PeerError`, naming the rank and what it was doing, instead of hanging.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

BACKENDS = ("auto", "gloo", "nccl")


class PeerError(RuntimeError):
    """A collective failed: another rank stopped (an error, a crash, a kill) or did not answer in time."""


class ReplicaMismatchError(RuntimeError):
    """The model replicas of the ranks differ (they must stay identical)."""


@dataclass(frozen=True, kw_only=True)
class DistributedConfig:
    """How the ranks talk to each other."""

    backend: str = "auto"
    """``gloo`` (CPU), ``nccl`` (CUDA) or ``auto``: ``nccl`` when CUDA is available, else ``gloo``."""
    timeout_s: float = 900.0
    """Longest wait of one rank for the others in any collective (and at start-up). It must cover the longest
    time ranks can drift apart between two collectives: one evaluation of the slowest rank's tasks."""
    bucket_mb: float = 25.0
    """Size of the flat buffers gradients are summed in (one all-reduce per bucket)."""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        for name in ("timeout_s", "bucket_mb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
                raise ValueError(f"{name} must be a positive number, got {value!r}")


def resolve_backend(backend: str) -> str:
    """``auto`` -> ``nccl`` when CUDA is available (and NCCL built in), else ``gloo``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
    return backend


class Comm:
    """This rank's view of the process group: rank, world size, and the collectives, each with a phase name
    that goes into the error if it fails."""

    def __init__(self, config: DistributedConfig, *, cpu_group: Any = None) -> None:
        if not dist.is_initialized():
            raise RuntimeError("torch.distributed is not initialised; call init_distributed() first")
        self.config = config
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.backend = dist.get_backend()
        self.cpu_group = cpu_group
        self.local_rank = int(os.environ.get("LOCAL_RANK", self.rank))

    @property
    def timeout_s(self) -> float:
        return self.config.timeout_s

    @property
    def device(self) -> torch.device:
        """Where tensors for the main group live (CUDA for NCCL)."""
        return torch.device("cuda", torch.cuda.current_device()) if self.backend == "nccl" else torch.device("cpu")

    def __repr__(self) -> str:
        return f"Comm(rank={self.rank}, world_size={self.world_size}, backend={self.backend!r})"

    @contextmanager
    def phase(self, what: str) -> Iterator[None]:
        """Turn a failed collective into a :class:`PeerError` that says which rank failed doing what."""
        try:
            yield
        except PeerError:
            raise
        except RuntimeError as e:  # DistBackendError / DistNetworkError, or gloo's own errors
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise PeerError(
                f"rank {self.rank} of {self.world_size}: {what} failed: another rank stopped (see its own error) or "
                f"did not answer within {self.timeout_s:g} s [{type(e).__name__}: {first[:300]}]") from e

    # ------------------------------------------------------------------ collectives
    def all_reduce_(self, tensor: torch.Tensor, what: str) -> torch.Tensor:
        """Sum ``tensor`` over ranks in place (main group: device tensors)."""
        with self.phase(what):
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def all_reduce_cpu_(self, tensor: torch.Tensor, what: str) -> torch.Tensor:
        """Sum a CPU tensor over ranks in place (through the CPU group)."""
        with self.phase(what):
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=self.cpu_group)
        return tensor

    def all_gather_object(self, obj: Any, what: str) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        out: list[Any] = [None] * self.world_size
        with self.phase(what):
            dist.all_gather_object(out, obj, group=self.cpu_group)
        return out

    def gather_object(self, obj: Any, what: str) -> list[Any] | None:
        """Every rank's ``obj`` in rank order on rank 0 (``None`` elsewhere)."""
        out: list[Any] | None = [None] * self.world_size if self.rank == 0 else None
        with self.phase(what):
            dist.gather_object(obj, out, dst=0, group=self.cpu_group)
        return out

    def broadcast_object(self, obj: Any, what: str) -> Any:
        """Rank 0's ``obj`` on every rank."""
        box = [obj if self.rank == 0 else None]
        with self.phase(what):
            dist.broadcast_object_list(box, src=0, group=self.cpu_group)
        return box[0]

    def broadcast_flag(self, flag: bool, what: str) -> bool:
        """Rank 0's boolean on every rank (one tiny broadcast)."""
        t = torch.tensor([1 if (flag and self.rank == 0) else 0], dtype=torch.int32)
        with self.phase(what):
            dist.broadcast(t, src=0, group=self.cpu_group)
        return bool(t.item())

    @torch.no_grad()
    def broadcast_tensors_(self, tensors: Sequence[torch.Tensor], what: str) -> None:
        """Overwrite ``tensors`` on every rank with rank 0's values (flattened per device and dtype)."""
        for group in _by_device_dtype(tensors).values():
            flat = torch.cat([t.detach().reshape(-1) for t in group]).to(self.device)
            with self.phase(what):
                dist.broadcast(flat, src=0)
            offset = 0
            for t in group:
                n = t.numel()
                t.copy_(flat[offset:offset + n].view_as(t))
                offset += n

    def barrier(self, what: str) -> None:
        with self.phase(what):
            dist.barrier(group=self.cpu_group)

    # ------------------------------------------------------------------ replicas
    def sync_module_(self, module: torch.nn.Module, what: str) -> None:
        """Give every rank rank 0's parameters and buffers (after checking the structures agree)."""
        signature = [(n, tuple(p.shape), str(p.dtype)) for n, p in module.state_dict().items()]
        signatures = self.all_gather_object(signature, f"{what} (structure check)")
        for r, other in enumerate(signatures):
            if other != signature:
                diff = sorted(set(other) ^ set(signature))[:3]
                raise ReplicaMismatchError(f"rank {r}'s model differs in structure from rank {self.rank}'s (same "
                                           f"tasks, config and DPS stage needed on every rank); e.g. {diff}")
        self.broadcast_tensors_([t for t in module.state_dict().values() if t.numel()], what)

    @torch.no_grad()
    def check_replicas(self, module: torch.nn.Module, what: str = "replica check") -> None:
        """Raise :class:`ReplicaMismatchError` unless every rank holds bit-identical parameters and buffers."""
        items = [(n, t) for n, t in module.state_dict().items() if t.numel()]
        sums = torch.stack([torch.stack([t.double().sum(), (t.double() ** 2).sum(), t.double().abs().max()])
                            for _, t in items]).cpu() if items else torch.zeros(0, 3, dtype=torch.float64)
        gathered = self.all_gather_object(sums, what)
        for r, other in enumerate(gathered):
            if other.shape != sums.shape:
                raise ReplicaMismatchError(f"rank {r} has {other.shape[0]} tensors, rank {self.rank} {sums.shape[0]}")
            bad = (other != sums).any(dim=1).nonzero().flatten().tolist()
            if bad:
                raise ReplicaMismatchError(f"{what}: rank {r} and rank {self.rank} differ in "
                                           f"{[items[i][0] for i in bad[:5]]} ({len(bad)} tensors)")


def _by_device_dtype(tensors: Sequence[torch.Tensor]) -> dict[tuple[torch.device, torch.dtype], list[torch.Tensor]]:
    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.device, t.dtype), []).append(t)
    return groups


class GradientAllReduce:
    """Sums gradients over ranks (the :class:`~scalezero_agents.learning.learner.GradientSync` of a rank).

    Every trainable parameter joins the reduction, whether or not it got a gradient on this rank: one that did
    not (another rank's task heads, experts no local token was routed to, a rank with no batch) contributes
    zeros, so all ranks reduce the same buffers in the same order and never hang. One extra flag per parameter
    is summed along: a parameter no rank used keeps ``grad = None`` (AdamW then skips it, as in one process).
    """

    def __init__(self, comm: Comm) -> None:
        self.comm = comm
        self.bucket_bytes = int(comm.config.bucket_mb * 2**20)
        self.global_rows: int | None = None
        """Rows of the next update over all ranks, when the caller knows them (saves one collective); used
        once, then reset."""
        self._total_rows = 0
        """Rows of the current update over all ranks (set by :meth:`shared_weight`)."""

    def shared_weight(self, local_rows: int) -> float:
        total, self.global_rows = self.global_rows, None
        if total is None:
            t = torch.tensor([float(local_rows)], dtype=torch.float64)
            total = int(self.comm.all_reduce_cpu_(t, "batch-size sum").item())
        self._total_rows = total
        return local_rows / total if total > 0 else 0.0

    @torch.no_grad()
    def row_average(self, local: torch.Tensor, local_rows: int) -> torch.Tensor:
        total = local * float(local_rows)
        self.comm.all_reduce_(total, "expert-load sum")
        return total / self._total_rows if self._total_rows > 0 else total

    @torch.no_grad()
    def reduce(self, params: Sequence[torch.nn.Parameter]) -> None:
        for group in _by_device_dtype(params).values():
            for bucket in self._buckets(group):
                self._reduce_bucket(bucket)

    def _buckets(self, params: list[torch.nn.Parameter]) -> Iterator[list[torch.nn.Parameter]]:
        bucket: list[torch.nn.Parameter] = []
        size = 0
        for p in params:
            nbytes = p.numel() * p.element_size()
            if bucket and size + nbytes > self.bucket_bytes:
                yield bucket
                bucket, size = [], 0
            bucket.append(p)
            size += nbytes
        if bucket:
            yield bucket

    def _reduce_bucket(self, bucket: list[torch.nn.Parameter]) -> None:
        numel = sum(p.numel() for p in bucket)
        flat = torch.zeros(numel + len(bucket), dtype=bucket[0].dtype, device=bucket[0].device)
        offset = 0
        for i, p in enumerate(bucket):
            n = p.numel()
            if p.grad is not None:
                flat[offset:offset + n].copy_(p.grad.reshape(-1))
                flat[numel + i] = 1
            offset += n
        if self.comm.backend == "nccl" and flat.device.type != "cuda":
            raise RuntimeError("the NCCL backend needs the model on CUDA; use backend='gloo' for a CPU model")
        self.comm.all_reduce_(flat, "gradient all-reduce")
        used = (flat[numel:] > 0).tolist()
        offset = 0
        for p, u in zip(bucket, used, strict=True):
            n = p.numel()
            p.grad = flat[offset:offset + n].view_as(p) if u else None
            offset += n


_COMM: Comm | None = None


def init_distributed(config: DistributedConfig | None = None) -> Comm:
    """Join (or create) the process group and return this rank's :class:`Comm`.

    Under ``torchrun`` (``RANK``/``WORLD_SIZE``/``MASTER_ADDR`` set) this joins that group; without those
    variables it makes a group of one (so the same entry point runs in one process). With NCCL the rank's
    CUDA device is ``LOCAL_RANK``. Calling it again returns the same :class:`Comm`.
    """
    global _COMM
    config = config if config is not None else DistributedConfig()
    if _COMM is not None and dist.is_initialized():
        return _COMM
    backend = resolve_backend(config.backend)
    timeout = timedelta(seconds=config.timeout_s)
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise RuntimeError("backend 'nccl' needs CUDA; use 'gloo' on CPU")
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        if "MASTER_ADDR" in os.environ and "WORLD_SIZE" in os.environ:
            dist.init_process_group(backend, timeout=timeout)
        else:
            if int(os.environ.get("WORLD_SIZE", "1")) != 1:
                raise RuntimeError("WORLD_SIZE > 1 without MASTER_ADDR/MASTER_PORT: launch with torchrun")
            dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1, timeout=timeout)
    cpu_group = dist.new_group(backend="gloo", timeout=timeout) if dist.get_backend() == "nccl" else None
    _COMM = Comm(config, cpu_group=cpu_group)
    return _COMM


def current_comm() -> Comm:
    """The :class:`Comm` made by :func:`init_distributed` (raises if there is none)."""
    if _COMM is None or not dist.is_initialized():
        raise RuntimeError("no process group: call scalezero_agents.distributed.init_distributed() first "
                           "(under torchrun, or alone for a group of one)")
    return _COMM


def shutdown() -> None:
    """Leave the process group (call at the end of a successful run)."""
    global _COMM
    if dist.is_initialized():
        dist.destroy_process_group()
    _COMM = None
