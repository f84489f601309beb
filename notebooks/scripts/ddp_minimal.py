"""Data-parallel training in one file. Start it with torchrun, which runs one copy per worker:

    torchrun --nproc_per_node=2 ddp_minimal.py
"""
import argparse
import os
import time

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Train a small classifier with DDP (start with torchrun).")
    parser.add_argument("--num-epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32, help="per worker")
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--hidden-size", type=int, default=32, help="width of the two hidden layers")
    parser.add_argument("--num-samples", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="ddp_minimal.pt", help="where rank 0 saves the trained weights")
    return parser.parse_args(argv)


def make_data(num_samples, seed):
    """Random points in 20 dimensions, labelled 0-3 by a hidden linear rule: the same on every worker."""
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(num_samples, 20, generator=g)                   # (num_samples, 20)
    targets = (inputs @ torch.randn(20, 4, generator=g)).argmax(dim=1)  # (num_samples,)
    return TensorDataset(inputs, targets)


def make_model(hidden_size, seed):
    torch.manual_seed(seed)  # the same initial weights wherever it is built
    return nn.Sequential(nn.Linear(20, hidden_size), nn.ReLU(),
                         nn.Linear(hidden_size, hidden_size), nn.ReLU(),
                         nn.Linear(hidden_size, 4))


def time_all_reduce(model, repeats=10):
    """Milliseconds one all-reduce of as many numbers as the model has gradients takes (median of `repeats`)."""
    numbers = torch.zeros(sum(p.numel() for p in model.parameters()))
    times = []
    for _ in range(repeats + 2):  # the first two set up the connections: not counted
        dist.barrier()            # start together
        start = time.perf_counter()
        dist.all_reduce(numbers)
        times.append(time.perf_counter() - start)
    return 1e3 * sorted(times[2:])[repeats // 2]


def main(argv=None):
    args = parse_args(argv)
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])  # torchrun sets both
    # join the other workers at MASTER_ADDR:MASTER_PORT, which torchrun sets (or at DDP_INIT_METHOD, if given)
    dist.init_process_group("gloo", init_method=os.environ.get("DDP_INIT_METHOD", "env://"),
                            rank=rank, world_size=world_size)

    dataset = make_data(args.num_samples, args.seed)
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=args.seed)
    loader = DataLoader(dataset, batch_size=args.batch_size, sampler=sampler)  # this worker's share only
    model = DistributedDataParallel(make_model(args.hidden_size, args.seed))  # copies rank 0's weights to all
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    if world_size > 1:  # with one worker there is nothing to exchange
        allreduce_ms = time_all_reduce(model)  # what DDP's averaging costs per step, at least
        if rank == 0:
            print(f"{world_size} workers; one all-reduce of the gradients takes {allreduce_ms:.2f} ms")

    for epoch in range(1, args.num_epochs + 1):
        sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every worker
        start = time.perf_counter()
        sums = torch.zeros(3)     # this worker's summed loss, correct answers, samples
        for inputs, targets in loader:
            logits = model(inputs)
            loss = loss_fn(logits, targets)
            optimizer.zero_grad()
            loss.backward()       # DDP averages the gradients over the workers here
            optimizer.step()      # the same step on every worker
            sums[0] += loss.detach() * len(targets)  # kept as tensors: no .item() in the loop
            sums[1] += (logits.argmax(dim=1) == targets).sum()
            sums[2] += len(targets)
        seconds = torch.tensor([time.perf_counter() - start])
        dist.all_reduce(sums)                           # SUM: every worker now holds the totals
        dist.all_reduce(seconds, op=dist.ReduceOp.MAX)  # an epoch lasts as long as its slowest worker
        if rank == 0:             # one worker prints and saves
            print(f"epoch {epoch}: loss {sums[0] / sums[2]:.3f}, accuracy {sums[1] / sums[2]:.3f}, "
                  f"{int(sums[2])} samples on {world_size} worker(s), {seconds.item():.2f} s")
    if rank == 0:
        torch.save(model.module.state_dict(), args.out)  # model.module: the model inside the DDP wrapper
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
