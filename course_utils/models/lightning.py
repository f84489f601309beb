"""The course's Fashion-MNIST MLP as a Lightning module, and its data as a Lightning data module."""

from __future__ import annotations

import logging
import warnings

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader

from course_utils.datasets import mnist
from course_utils.fc_model import Network


class LitClassifier(L.LightningModule):
    """fc_model.Network trained with NLLLoss and Adam; logs loss and accuracy per stage."""

    def __init__(self, model_config: dict, lr: float = 1e-3, lr_gamma: float = 1.0, sync_dist: bool = False):
        super().__init__()
        self.save_hyperparameters()  # into the checkpoint: load_from_checkpoint rebuilds the model from them
        self.model = Network(**model_config)
        self.loss_fn = nn.NLLLoss()  # Network returns log-probabilities

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)  # (batch, 1, 28, 28) -> (batch, 10) log-probabilities

    def _common_step(self, batch, stage: str) -> torch.Tensor:
        images, labels = batch
        log_probs = self(images)
        loss = self.loss_fn(log_probs, labels)
        accuracy = (log_probs.argmax(dim=1) == labels).float().mean()
        # batch_size: the epoch value is then the per-sample mean, as the course loop computes it
        self.log_dict({f"{stage}_loss": loss, f"{stage}_accuracy": accuracy}, batch_size=len(labels),
                      on_step=False, on_epoch=True, sync_dist=self.hparams.sync_dist)
        return loss

    def training_step(self, batch, batch_idx):
        return self._common_step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._common_step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._common_step(batch, "test")

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=self.hparams.lr_gamma)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}  # stepped once per epoch


class FashionMNISTDataModule(L.LightningDataModule):
    """The lessons' Fashion-MNIST splits (mnist.tensor_datasets) behind Lightning's data hooks."""

    def __init__(self, batch_size: int = 64, train_subset: int | None = None, val_fraction: float = 0.1,
                 seed: int = 0, name: str = "fashion_mnist"):
        super().__init__()
        self.batch_size, self.train_subset, self.val_fraction = batch_size, train_subset, val_fraction
        self.seed, self.name = seed, name
        self.datasets: dict | None = None

    def prepare_data(self):
        mnist.prepare(self.name)  # once per machine (local rank 0): it fills the data cache

    def setup(self, stage: str | None = None):
        if self.datasets is None:
            self.datasets = mnist.tensor_datasets(self.name, val_fraction=self.val_fraction,
                                                  train_subset=self.train_subset, seed=self.seed)

    def train_dataloader(self) -> DataLoader:
        # a fresh generator per call: two trainings from this data module see the same order
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(self._get("train"), self.batch_size, shuffle=True, generator=generator)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self._get("val"), self.batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self._get("test"), self.batch_size)

    def _get(self, split: str):
        if self.datasets is None:
            raise RuntimeError("call setup() first (the Trainer does it before using the loaders)")
        return self.datasets[split]


def quiet_lightning() -> None:
    """Keep Lightning's output to warnings: no hardware banner or product tips in lesson outputs."""
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Lightning 2.6.6 still instantiates torch's LeafSpec, which torch 2.14 deprecates; nothing to fix on our side
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                            category=FutureWarning)
