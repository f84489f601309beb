"""Lesson 16: answers written by an independent learner from the statements alone."""

EPOCH_METRICS = """
def epoch_metrics(per_worker):
    total = sum(w["samples"] for w in per_worker)
    loss = sum(w["loss"] * w["samples"] for w in per_worker) / total
    accuracy = sum(w["accuracy"] * w["samples"] for w in per_worker) / total
    seconds = max(w["seconds"] for w in per_worker)
    return {"loss": loss, "accuracy": accuracy, "samples": int(total), "seconds": float(seconds)}
"""

SHARD_INDICES = """
def shard_indices(num_samples, rank, world_size, seed, epoch):
    g = torch.Generator().manual_seed(seed + epoch)
    perm = torch.randperm(num_samples, generator=g).tolist()
    total = math.ceil(num_samples / world_size) * world_size
    padded = list(perm)
    while len(padded) < total:
        padded += perm[: total - len(padded)]
    return padded[rank:total:world_size]
"""

ACCUMULATE = """
def accumulate_gradients(model, loss_fn, inputs, targets, micro_batches):
    model.zero_grad()
    n = inputs.shape[0]
    pieces = zip(torch.tensor_split(inputs, micro_batches), torch.tensor_split(targets, micro_batches))
    for x, y in pieces:
        loss = loss_fn(model(x), y) * (x.shape[0] / n)
        loss.backward()
"""

RIGHT = {
    "16.1": [
        EPOCH_METRICS,
        """
def epoch_metrics(per_worker):
    samples = torch.tensor([w["samples"] for w in per_worker], dtype=torch.float64)
    losses = torch.tensor([w["loss"] for w in per_worker], dtype=torch.float64)
    accuracies = torch.tensor([w["accuracy"] for w in per_worker], dtype=torch.float64)
    seconds = torch.tensor([w["seconds"] for w in per_worker], dtype=torch.float64)
    n = samples.sum()
    return {
        "loss": ((losses * samples).sum() / n).item(),
        "accuracy": ((accuracies * samples).sum() / n).item(),
        "samples": int(n.item()),
        "seconds": seconds.max().item(),
    }
""",
    ],
    "16.2": [
        SHARD_INDICES,
        """
def shard_indices(num_samples, rank, world_size, seed, epoch):
    generator = torch.Generator()
    generator.manual_seed(seed + epoch)
    perm = torch.randperm(num_samples, generator=generator)
    per_rank = -(-num_samples // world_size)
    total = per_rank * world_size
    repeats = -(-total // num_samples)
    padded = perm.repeat(repeats)[:total]
    return [int(i) for i in padded.view(per_rank, world_size)[:, rank]]
""",
    ],
    "16.3": [
        ACCUMULATE,
        """
def accumulate_gradients(model, loss_fn, inputs, targets, micro_batches):
    for p in model.parameters():
        if p.grad is not None:
            p.grad.zero_()
    batch = len(inputs)
    xs = torch.tensor_split(inputs, micro_batches, dim=0)
    ys = torch.tensor_split(targets, micro_batches, dim=0)
    for i in range(micro_batches):
        out = model(xs[i])
        (loss_fn(out, ys[i]) * len(ys[i]) / batch).backward()
""",
    ],
}

WRONG = {
    "16.1": [
        # the mean of the workers' means, whatever their sizes
        EPOCH_METRICS.replace('w["loss"] * w["samples"] for w in per_worker) / total',
                              'w["loss"] for w in per_worker) / len(per_worker)').replace(
            'w["accuracy"] * w["samples"] for w in per_worker) / total',
            'w["accuracy"] for w in per_worker) / len(per_worker)'),
        # the seconds summed over workers that run at the same time
        EPOCH_METRICS.replace('max(w["seconds"] for w in per_worker)', 'sum(w["seconds"] for w in per_worker)'),
        # the seconds averaged over the workers
        EPOCH_METRICS.replace('max(w["seconds"] for w in per_worker)',
                              'sum(w["seconds"] for w in per_worker) / len(per_worker)'),
        # float32 tensors: about 1e-8 off, more than the 1e-9 asked
        """
def epoch_metrics(per_worker):
    t = torch.tensor([[w["loss"] * w["samples"], w["accuracy"] * w["samples"], w["samples"]] for w in per_worker])
    s = t.sum(0)
    return {"loss": (s[0] / s[2]).item(), "accuracy": (s[1] / s[2]).item(), "samples": int(s[2]),
            "seconds": max(w["seconds"] for w in per_worker)}
""",
        # an extra key
        EPOCH_METRICS.replace('"seconds": float(seconds)}', '"seconds": float(seconds), "workers": len(per_worker)}'),
        # the first worker's dict reused as the result
        """
def epoch_metrics(per_worker):
    result = per_worker[0]
    total = sum(w["samples"] for w in per_worker)
    result["loss"] = sum(w["loss"] * w["samples"] for w in per_worker) / total
    result["accuracy"] = sum(w["accuracy"] * w["samples"] for w in per_worker) / total
    result["seconds"] = max(w["seconds"] for w in per_worker)
    result["samples"] = total
    return result
""",
    ],
    "16.2": [
        # contiguous blocks instead of every world_size-th position
        SHARD_INDICES.replace("    return padded[rank:total:world_size]\n",
                              "    per_rank = total // world_size\n"
                              "    return padded[rank * per_rank:(rank + 1) * per_rank]\n"),
        # padded once with the first indices: too short when there are fewer samples than workers
        SHARD_INDICES.replace("    while len(padded) < total:\n        padded += perm[: total - len(padded)]\n",
                              "    padded += perm[: total - len(padded)]\n"),
        # a tensor returned, not a list
        SHARD_INDICES.replace("generator=g).tolist()", "generator=g)").replace(
            "    padded = list(perm)\n    while len(padded) < total:\n        padded += perm[: total - len(padded)]\n",
            "    padded = perm.repeat(total // num_samples + 1)\n"),
        # no padding: some workers get one index less
        SHARD_INDICES.replace("return padded[rank:total:world_size]", "return perm[rank::world_size]"),
        # the same permutation every epoch
        SHARD_INDICES.replace("manual_seed(seed + epoch)", "manual_seed(seed)"),
    ],
    "16.3": [
        # every piece weighted alike, as if they had the same size
        ACCUMULATE.replace("(x.shape[0] / n)", "(1 / micro_batches)"),
        # the stale gradients kept
        ACCUMULATE.replace("    model.zero_grad()\n", ""),
        # torch.chunk, which may give fewer pieces
        ACCUMULATE.replace("zip(torch.tensor_split(inputs, micro_batches), torch.tensor_split(targets, micro_batches))",
                           "zip(torch.chunk(inputs, micro_batches), torch.chunk(targets, micro_batches))"),
        # slices of batch // micro_batches: the last samples left out
        """
def accumulate_gradients(model, loss_fn, inputs, targets, micro_batches):
    model.zero_grad()
    size = len(inputs) // micro_batches
    for i in range(micro_batches):
        x, y = inputs[i * size:(i + 1) * size], targets[i * size:(i + 1) * size]
        (loss_fn(model(x), y) * len(x) / len(inputs)).backward()
""",
        # the pieces' mean losses summed, not weighted
        ACCUMULATE.replace(" * (x.shape[0] / n)", ""),
    ],
}
