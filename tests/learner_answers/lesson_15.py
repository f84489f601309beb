"""Lesson 15: answers written by an independent learner from the statements alone."""

LIT_LINEAR = """
import lightning as L


class LitLinear(L.LightningModule):
    def __init__(self, input_size, num_classes, lr):
        super().__init__()
        self.save_hyperparameters()
        self.linear = nn.Linear(input_size, num_classes)

    def forward(self, x):
        return self.linear(x)

    def training_step(self, batch, batch_idx):
        inputs, labels = batch
        loss = F.cross_entropy(self(inputs), labels)
        self.log("train_loss", loss, batch_size=inputs.shape[0])
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)
"""

PLATEAU_STOP = """
import lightning as L


class PlateauStop(L.Callback):
    def __init__(self, monitor, patience, mode="min"):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', not {mode!r}")
        self.monitor = monitor
        self.patience = patience
        self.mode = mode
        self.best = math.inf if mode == "min" else -math.inf
        self.bad = 0

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        if self.monitor not in trainer.callback_metrics:
            raise ValueError(f"{self.monitor!r} is not among the logged metrics")
        value = float(trainer.callback_metrics[self.monitor])
        improved = value < self.best if self.mode == "min" else value > self.best
        if improved:
            self.best = value
            self.bad = 0
        else:
            self.bad += 1
            if self.bad >= self.patience:
                trainer.should_stop = True
"""

DATA_MODULE = """
import lightning as L
from torch.utils.data import DataLoader, TensorDataset, random_split


class TensorDataModule(L.LightningDataModule):
    def __init__(self, inputs, targets, batch_size, val_fraction, seed):
        super().__init__()
        self.inputs = inputs
        self.targets = targets
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.seed = seed

    def setup(self, stage=None):
        dataset = TensorDataset(self.inputs, self.targets)
        n_val = int(self.val_fraction * len(dataset))
        generator = torch.Generator().manual_seed(self.seed)
        self.train_set, self.val_set = random_split(dataset, [len(dataset) - n_val, n_val], generator=generator)

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size)
"""

RIGHT = {
    "15.1": [
        LIT_LINEAR,
        """
import lightning as L


class LitLinear(L.LightningModule):
    def __init__(self, input_size, num_classes, lr):
        super().__init__()
        self.save_hyperparameters()
        self.layer = nn.Linear(input_size, num_classes)
        self.lr = lr

    def forward(self, x):
        return self.layer(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.forward(x)
        loss = F.nll_loss(F.log_softmax(logits, dim=1), y)
        self.log("train_loss", loss, batch_size=len(y), prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(list(self.layer.parameters()), lr=self.lr)
""",
    ],
    "15.2": [
        PLATEAU_STOP,
        """
import lightning as L


class PlateauStop(L.Callback):
    def __init__(self, monitor, patience, mode="min"):
        signs = {"min": 1.0, "max": -1.0}
        if mode not in signs:
            raise ValueError("unknown mode " + str(mode))
        self.sign = signs[mode]
        self.monitor = monitor
        self.patience = patience
        self.history = []

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        if self.monitor not in metrics:
            raise ValueError(f"no metric named {self.monitor} was logged (have {sorted(metrics)})")
        self.history.append(self.sign * metrics[self.monitor].item())
        best_at = min(range(len(self.history)), key=lambda i: (self.history[i], i))
        if len(self.history) - 1 - best_at >= self.patience:
            trainer.should_stop = True
""",
    ],
    "15.3": [
        DATA_MODULE,
        """
import lightning as L
from torch.utils.data import DataLoader, TensorDataset, random_split


class TensorDataModule(L.LightningDataModule):
    def __init__(self, inputs, targets, batch_size, val_fraction, seed):
        super().__init__()
        self.data = (inputs, targets)
        self.batch_size, self.val_fraction, self.seed = batch_size, val_fraction, seed

    def setup(self, stage=None):
        inputs, targets = self.data
        n = inputs.shape[0]
        n_val = int(self.val_fraction * n)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
        val_idx, train_idx = order[:n_val], order[n_val:]
        self.val_set = TensorDataset(inputs[val_idx], targets[val_idx])
        self.train_set = TensorDataset(inputs[train_idx], targets[train_idx])

    def train_dataloader(self):
        return DataLoader(self.train_set, self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, self.batch_size, shuffle=False)
""",
    ],
}

WRONG = {
    "15.1": [
        # backward() inside the training step
        LIT_LINEAR.replace(
            '        self.log("train_loss", loss, batch_size=inputs.shape[0])\n',
            '        self.log("train_loss", loss, batch_size=inputs.shape[0])\n        loss.backward()\n'),
        # no batch size given to self.log
        LIT_LINEAR.replace("loss, batch_size=inputs.shape[0])", "loss)"),
        # a fixed learning rate instead of lr
        LIT_LINEAR.replace("lr=self.hparams.lr", "lr=0.1"),
        # len(batch) is the tuple's length, 2
        LIT_LINEAR.replace("batch_size=inputs.shape[0]", "batch_size=len(batch)"),
        # no save_hyperparameters(): lr kept in an attribute
        LIT_LINEAR.replace("        self.save_hyperparameters()\n", "        self.lr = lr\n").replace(
            "lr=self.hparams.lr", "lr=self.lr"),
        # probabilities instead of logits
        LIT_LINEAR.replace("        return self.linear(x)\n", "        return F.softmax(self.linear(x), dim=1)\n"),
        # the summed loss, not the mean
        LIT_LINEAR.replace("F.cross_entropy(self(inputs), labels)",
                           "F.cross_entropy(self(inputs), labels, reduction='sum')"),
        # Adam instead of SGD
        LIT_LINEAR.replace("torch.optim.SGD", "torch.optim.Adam"),
        # the loss returned as a Python float
        LIT_LINEAR.replace("        return loss\n", "        return loss.item()\n"),
    ],
    "15.2": [
        # a tie counted as an improvement
        PLATEAU_STOP.replace("value < self.best if", "value <= self.best if").replace(
            "else value > self.best", "else value >= self.best"),
        # one validation too many before stopping
        PLATEAU_STOP.replace("self.bad >= self.patience", "self.bad > self.patience"),
        # the sanity check not ignored
        PLATEAU_STOP.replace("        if trainer.sanity_checking:\n            return\n", ""),
        # a missing metric left to raise a KeyError
        PLATEAU_STOP.replace("""        if self.monitor not in trainer.callback_metrics:
            raise ValueError(f"{self.monitor!r} is not among the logged metrics")
""", ""),
        # the missing metric's ValueError does not name it
        PLATEAU_STOP.replace('raise ValueError(f"{self.monitor!r} is not among the logged metrics")',
                             'raise ValueError("the monitored metric is missing")'),
        # any mode other than "min" taken as "max"
        PLATEAU_STOP.replace("""        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', not {mode!r}")
""", ""),
    ],
    "15.3": [
        # random_split without a seeded generator
        DATA_MODULE.replace(", generator=generator)", ")"),
        # the training loader never reshuffles
        DATA_MODULE.replace("batch_size=self.batch_size, shuffle=True)", "batch_size=self.batch_size)"),
        # the sizes swapped
        DATA_MODULE.replace("[len(dataset) - n_val, n_val]", "[n_val, len(dataset) - n_val]"),
        # round() instead of int()
        DATA_MODULE.replace("n_val = int(self.val_fraction * len(dataset))",
                            "n_val = round(self.val_fraction * len(dataset))"),
        # the last, incomplete training batch dropped: some samples never served
        DATA_MODULE.replace("batch_size=self.batch_size, shuffle=True)",
                            "batch_size=self.batch_size, shuffle=True, drop_last=True)"),
        # the validation loader shuffled too
        DATA_MODULE.replace("DataLoader(self.val_set, batch_size=self.batch_size)",
                            "DataLoader(self.val_set, batch_size=self.batch_size, shuffle=True)"),
    ],
}
