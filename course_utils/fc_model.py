"""The older notes' fully connected network and its train / validation / save / load functions, made current."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.core.arguments import check_count
from course_utils.core.checkpoints import restore, save_checkpoint


class Network(nn.Module):
    """A feed-forward classifier with any number of hidden layers; returns log-probabilities."""

    def __init__(self, input_size: int, output_size: int, hidden_layers: list[int], drop_p: float = 0.5):
        super().__init__()
        if not hidden_layers:
            raise ValueError("hidden_layers needs at least one size")
        sizes = [input_size, *hidden_layers]
        self.hidden_layers = nn.ModuleList(nn.Linear(n_in, n_out) for n_in, n_out in zip(sizes[:-1], sizes[1:]))
        self.output = nn.Linear(hidden_layers[-1], output_size)
        self.dropout = nn.Dropout(p=drop_p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(start_dim=1)  # (batch, C, H, W) -> (batch, C*H*W); flat input passes unchanged
        for layer in self.hidden_layers:
            x = self.dropout(F.relu(layer(x)))
        return F.log_softmax(self.output(x), dim=1)


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def validation(model: nn.Module, testloader, criterion) -> tuple[float, float]:
    """Sum over batches of (loss, accuracy): divide each by len(testloader), as the older notes do."""
    device = _model_device(model)
    test_loss, accuracy = 0.0, 0.0
    for images, labels in testloader:
        images, labels = images.to(device), labels.to(device)
        log_probs = model(images)
        test_loss += criterion(log_probs, labels).item()
        accuracy += (log_probs.argmax(dim=1) == labels).float().mean().item()
    return test_loss, accuracy


def train(model: nn.Module, trainloader, testloader, criterion, optimizer,
          epochs: int = 5, print_every: int = 40) -> None:
    """The older notes' loop: train on the model's device, validate on `testloader` every `print_every` steps.

    The older notes call the argument `testloader`; give it validation data (the test set is for the end).
    """
    check_count("epochs", epochs)
    check_count("print_every", print_every)
    device = _model_device(model)
    steps, running_loss = 0, 0.0
    for e in range(epochs):
        model.train()
        for images, labels in trainloader:
            steps += 1
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
            if steps % print_every == 0:
                model.eval()
                val_loss, accuracy = validation(model, testloader, criterion)
                print(f"Epoch: {e + 1}/{epochs}.. "
                      f"Training Loss: {running_loss / print_every:.3f}.. "
                      f"Validation Loss: {val_loss / len(testloader):.3f}.. "
                      f"Validation Accuracy: {accuracy / len(testloader):.3f}")
                running_loss = 0.0
                model.train()


def save_model(filepath: str | Path, model: Network, input_size: int, output_size: int,
               hidden_sizes: list[int]) -> Path:
    """Save the layer sizes and weights, atomically, so load_checkpoint can rebuild the network."""
    config = {"input_size": input_size, "output_size": output_size, "hidden_layers": list(hidden_sizes),
              "drop_p": model.dropout.p}
    return save_checkpoint(filepath, model, config)


def load_checkpoint(filepath: str | Path, map_location: str | torch.device = "cpu") -> Network:
    """Rebuild a Network from a save_model file, on `map_location` (a GPU-saved file loads on a CPU)."""
    return restore(filepath, Network, map_location)[0]
