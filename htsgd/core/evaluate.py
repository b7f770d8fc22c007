"""Loss and accuracy of a model on a whole dataset split, in chunks that fit the device, without autograd."""

import torch
from torch.nn import functional as F

# Bytes of the largest layer output one chunk may produce. vgg11_wide's first convolution gives
# 512 KiB per 32x32 image, so a chunk of 10,000 images alone would need about 5 GB.
ACTIVATION_BUDGET = 256 * 2**20
MAX_CHUNK = 10_000


@torch.inference_mode()
def evaluate(model, x: torch.Tensor, y: torch.Tensor, chunk_size: int | None = None) -> tuple[float, float]:
    """Mean cross-entropy and accuracy (%) of `model` on all of (x, y).

    Losses are summed in float64, so chunking changes the sum only through the forward pass
    itself: a backend may pick another float32 algorithm for another batch shape (the CPU's
    convolution does for a batch of one), which moves the loss by about 1e-8 relative.
    """
    was_training = model.training
    model.eval()
    chunk_size = chunk_size or examples_per_chunk(model, x)
    loss_sum = torch.zeros((), dtype=torch.float64, device=x.device)
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    for xb, yb in zip(x.split(chunk_size), y.split(chunk_size)):
        logits = model(xb)
        loss_sum += F.cross_entropy(logits.double(), yb, reduction="sum")
        correct += (logits.argmax(1) == yb).sum()
    model.train(was_training)
    n = max(len(y), 1)
    return loss_sum.item() / n, 100.0 * correct.item() / n


def examples_per_chunk(model, x: torch.Tensor) -> int:
    """How many examples keep the largest activation within ACTIVATION_BUDGET, measured on one example."""
    if len(x) == 0:
        return 1
    largest = 0

    def measure(module, inputs, output):
        nonlocal largest
        if isinstance(output, torch.Tensor):
            largest = max(largest, output.numel() * output.element_size())

    hooks = [m.register_forward_hook(measure) for m in model.modules() if not list(m.children())]
    try:
        model(x[:1])
    finally:
        for hook in hooks:
            hook.remove()
    return max(1, min(MAX_CHUNK, ACTIVATION_BUDGET // max(largest, 1)))
