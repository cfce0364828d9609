"""Distributed data parallel (DDP) plumbing: the same train.py on 1 process or under torchrun.

    torchrun --nproc_per_node=2 train.py --quick

torchrun starts N copies of the script and sets RANK, LOCAL_RANK and WORLD_SIZE. Each copy holds the
whole model and a different shard of every epoch (the DistributedSampler); after each backward pass DDP
averages the gradients over all copies (all-reduce), so every copy takes the same optimiser step and the
models stay identical. The EMA target is then updated identically everywhere. Only rank 0 writes.
gloo is the backend on CPU, nccl on CUDA.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset


def setup(device: torch.device) -> tuple[int, int]:
    """Join the process group when started by torchrun; return (rank, world_size) ((0, 1) otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world


def device_for(device: torch.device, world: int) -> torch.device:
    """On CUDA with several processes, each uses the GPU of its LOCAL_RANK."""
    if device.type == "cuda" and world > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def wrap(model: torch.nn.Module, world: int) -> torch.nn.Module:
    """Wrap in DistributedDataParallel when there is more than one process (gradients are all-reduced)."""
    return DistributedDataParallel(model) if world > 1 else model


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside a DDP wrapper (for saving and for EMA)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def loader(*tensors: torch.Tensor, batch: int, seed: int, world: int, rank: int) -> DataLoader:
    """A shuffled loader over in-memory tensors; under DDP each rank gets its own shard per epoch."""
    data = TensorDataset(*tensors)
    if world > 1:
        sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=seed)
        return DataLoader(data, batch_size=batch, sampler=sampler, drop_last=True)
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(data, batch_size=batch, shuffle=True, drop_last=True, generator=gen)


def batches(data: DataLoader):
    """Cycle a loader forever, telling a DistributedSampler which epoch it is (a new shuffle each time)."""
    epoch = 0
    while True:
        if isinstance(data.sampler, DistributedSampler):
            data.sampler.set_epoch(epoch)
        yield from data
        epoch += 1


def cleanup(world: int) -> None:
    """Leave the process group."""
    if world > 1:
        dist.destroy_process_group()


def average_gradients(params, world: int) -> None:
    """What DDP does after backward, written out: sum each gradient over all processes, divide by N.

    Used by the no-EMA ablation, whose encoder runs twice per step (context and target) - a pattern
    DDP's automatic hooks do not allow."""
    if world == 1:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad.div_(world)


def barrier(world: int) -> None:
    """Wait until every process gets here (nothing to do with one process)."""
    if world > 1:
        dist.barrier()
