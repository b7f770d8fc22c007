"""The training loop of the original `main.py`, flat and on device-resident data.

Each step: minibatch forward, mean cross-entropy, backward, SGD step; every `eval_freq`
steps (step 0 included) evaluate on the full train and test sets; stop once train accuracy
reaches `convergence_accuracy` (unless `train_to_cap`) or the step cap is hit; otherwise add the
iterate noise.
"""

import math
import time

import torch
from torch.nn import functional as F
from tqdm import tqdm

from .config import TrainConfig
from .data import Data
from .evaluate import evaluate
from .models import build_model
from .noise import make_noise

HISTORY_COLUMNS = ["step", "train_loss", "train_acc", "test_loss", "test_acc"]
NOT_LEARNING_AFTER = 100_000  # steps after which a run still near chance is stopped
NOISE_STREAM = 0x5EED  # offsets the noise generator's seed from the batch order's
CHECK_EVERY = 25  # steps between host-side checks of the loss (avoids a device sync every step)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def chance_ceiling(num_classes: int) -> float:
    """Train accuracy (%) at or below which a run counts as not learning: 1.25x chance, 53 % for binary."""
    return 53.0 if num_classes == 2 else 125.0 / num_classes


def epoch_order(epoch: int, num_examples: int, seed: int, device) -> torch.Tensor:
    """The training set's order in `epoch`: a function of (seed, epoch) alone, so a resumed run sees the same batches."""
    generator = torch.Generator(device=device).manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(num_examples, generator=generator, device=device)


def train(config: TrainConfig, data: Data, device=None, progress: bool = True, resume: dict | None = None,
          on_checkpoint=None, checkpoint_every: int = 0, on_evaluation=None) -> dict:
    """Train one configuration and return its metrics, history and model; write nothing.

    `resume` is a state that `on_checkpoint(state)` was given earlier (every `checkpoint_every`
    steps): training goes on from it exactly as if it had never stopped. The train loss of the
    initial network, before any update, is what `max_train_loss_ratio` divides by.
    `on_evaluation(row)` is called with each history row right after it is recorded; when it returns
    True, training stops there with status "stopped" (a live view's stop button).
    """
    device = torch.device(device or data.train_x.device)
    torch.manual_seed(config.seed)
    model = build_model(config.model, data.input_shape, data.num_classes, config.width, config.depth).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.mom, weight_decay=config.wd)
    noise_generator = torch.Generator(device=device).manual_seed(config.seed + NOISE_STREAM)
    add_noise = make_noise(config, model, noise_generator)
    history, step, elapsed = [], 0, 0.0
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        noise_generator.set_state(resume["noise_generator"].cpu())
        history, step, elapsed = resume["history"], resume["step"], resume["elapsed"]
        initial_loss = resume["initial_train_loss"]
    else:
        initial_loss = evaluate(model, data.train_x, data.train_y)[0]

    n = len(data.train_y)
    batches_per_epoch = math.ceil(n / config.batch_size_train)
    ceiling = chance_ceiling(data.num_classes)
    bar = tqdm(total=config.iterations, initial=step, disable=not progress, mininterval=1.0, unit="step")
    status, started, order = None, time.perf_counter() - elapsed, None
    while status is None:
        epoch, position = divmod(step, batches_per_epoch)
        if order is None or position == 0:
            order = epoch_order(epoch, n, config.seed, data.train_x.device).split(config.batch_size_train)
        index = order[position]
        loss = sgd_step(model, optimizer, data.train_x[index], data.train_y[index])

        if step % config.eval_freq == 0:
            history.append(_record(step, model, data))
            if on_evaluation is not None and on_evaluation(history[-1]):
                status = "stopped"
        step += 1
        last = history[-1]
        if step % CHECK_EVERY == 0 or step >= config.iterations or last["step"] == step - 1:
            loss_value = loss.item()
            bar.set_postfix(loss=f"{loss_value:.4f}", train_acc=f"{last['train_acc']:.2f}",
                            test_acc=f"{last['test_acc']:.2f}", refresh=False)
            if not (math.isfinite(loss_value) and math.isfinite(last["train_loss"])):
                status = "diverged"
        bar.update(1)
        last_train_acc = last["train_acc"]
        if status is not None:
            break
        if last_train_acc >= config.convergence_accuracy and not config.train_to_cap:
            status = "converged"
        elif step >= NOT_LEARNING_AFTER and last_train_acc <= ceiling:
            status = "not_learning"
        elif step >= config.iterations:
            status = "completed" if config.train_to_cap else "cap"
        else:
            if add_noise is not None:
                add_noise()
            if on_checkpoint is not None and checkpoint_every and step % checkpoint_every == 0:
                on_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                               "noise_generator": noise_generator.get_state(), "history": history, "step": step,
                               "elapsed": time.perf_counter() - started, "initial_train_loss": initial_loss})
    bar.close()
    wall_time = time.perf_counter() - started
    if history[-1]["step"] != step - 1:
        history.append(_record(step - 1, model, data))
        if on_evaluation is not None:
            on_evaluation(history[-1])
    final = history[-1]
    metrics = {"status": status, "steps": step, "wall_time": wall_time, "steps_per_second": step / wall_time,
               **{k: final[k] for k in HISTORY_COLUMNS[1:]}, "initial_train_loss": initial_loss,
               "max_train_loss_ratio": max_train_loss_ratio(history, initial_loss),
               "convergence_step": convergence_step(history, config.convergence_accuracy)}
    return {"metrics": metrics, "history": history, "model": model}


def sgd_step(model, optimizer, x, y) -> torch.Tensor:
    """One minibatch step: forward, mean cross-entropy, backward, update. Returns the loss, on the device."""
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


def _record(step, model, data) -> dict:
    train_loss, train_acc = evaluate(model, data.train_x, data.train_y)
    test_loss, test_acc = evaluate(model, data.test_x, data.test_y)
    return {"step": step, "train_loss": train_loss, "train_acc": train_acc, "test_loss": test_loss, "test_acc": test_acc}


def convergence_step(history, accuracy: float) -> int | None:
    """The first evaluated step whose train accuracy reached `accuracy`, None if none did: in a run trained to
    its cap, how many of its steps convergence took."""
    return next((row["step"] for row in history if row["train_acc"] >= accuracy), None)


def max_train_loss_ratio(history, initial_loss: float) -> float:
    """The largest train loss of any evaluation over the initial network's, before any update: how far
    training was thrown off (the history's step-0 row is taken after the first update, as the original's)."""
    losses = [row["train_loss"] for row in history]
    if not all(math.isfinite(loss) for loss in losses):
        return math.inf
    return max(losses) / initial_loss if initial_loss > 0 else math.nan
