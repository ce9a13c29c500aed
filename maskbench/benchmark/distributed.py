"""Sharding frames across processes started by ``torchrun`` and gathering their picklable results.

``torchrun --nproc_per_node N -m maskbench run ...`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``;
:func:`from_env` joins the process group (``gloo`` on CPU, ``nccl`` on CUDA). Rank ``r`` of ``W`` takes the
frames ``r, r + W, r + 2W, ...``; metric accumulators are gathered with ``all_gather_object`` and merged in
rank order (their ``merge`` is exact and order-independent, so the result equals a single process run).
"""

import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist

from maskbench.errors import ConfigError, InputError


@dataclass
class Dist:
    """This process's place in the job: ``rank`` of ``world`` (``world == 1``: no process group)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def is_main(self):
        return self.rank == 0

    def shard(self, indices):
        """This rank's share of ``indices`` (round robin, so every rank gets a similar mix of frames)."""
        return list(indices)[self.rank::self.world]

    def gather(self, obj):
        """``[obj of rank 0, obj of rank 1, ...]`` on every rank (pickled through the process group)."""
        if self.world == 1:
            return [obj]
        out = [None] * self.world
        torch_dist.all_gather_object(out, obj)
        return out

    def barrier(self):
        if self.world > 1:
            torch_dist.barrier()

    def close(self):
        if self.owns_group and torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def from_env(device):
    """Join the process group described by torchrun's environment variables, or a single-process :class:`Dist`.

    ``device`` ``"cuda"`` selects ``cuda:LOCAL_RANK`` and the ``nccl`` backend; ``"cpu"`` uses ``gloo``.
    Returns ``(dist, torch_device)``.
    """
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", " cuda: no CUDA device is available to this process (use cpu)")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), torch.device(device)
    try:
        int(os.environ["RANK"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    except (KeyError, ValueError) as err:
        raise InputError(f"WORLD_SIZE={world} but RANK/LOCAL_RANK are missing or malformed ({err}); "
                         "start multi-process runs with torchrun") from err
    if device == "cuda":
        torch_device = torch.device("cuda", local_rank)
        torch.cuda.set_device(torch_device)
        backend = "nccl"
    else:
        torch_device, backend = torch.device(device), "gloo"
    owns = not torch_dist.is_initialized()
    if owns:
        torch_dist.init_process_group(backend=backend)
    return Dist(rank=torch_dist.get_rank(), world=torch_dist.get_world_size(), local_rank=local_rank,
                owns_group=owns), torch_device
