"""The training loop of the original `main.py`, flat and on device-resident data.

`train` reads as the original's loop: each step a minibatch update; every `eval_freq` steps (step 0
included) an evaluation on the full train and test sets; the stop test (train accuracy reached
`convergence_accuracy`, unless `train_to_cap`; still near chance; the step cap); and only then, if training
goes on, the iterate noise. What watches the loop without touching its numbers (progress bar, clock,
the host-side divergence check, the caller's hooks and checkpoints) is `Sidelines`.
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
    if resume is None:
        history, step, elapsed = [], 0, 0.0
        initial_loss = evaluate(model, data.train_x, data.train_y)[0]
    else:
        history, step, elapsed, initial_loss = restore(resume, model, optimizer, noise_generator)
    batches = Batches(data, config.batch_size_train, config.seed)
    ceiling = chance_ceiling(data.num_classes)
    sidelines = Sidelines(config.iterations, step, elapsed, progress, on_evaluation, on_checkpoint, checkpoint_every,
                          snapshot=lambda step, elapsed: checkpoint_state(model, optimizer, noise_generator, history,
                                                                          step, elapsed, initial_loss))
    while True:
        loss = sgd_step(model, optimizer, *batches.at(step))
        if step % config.eval_freq == 0:
            history.append(_record(step, model, data))
            sidelines.evaluated(history[-1])
        step += 1
        # the stop test comes before the noise: the step at which training stops gets none
        status = sidelines.interruption(step, loss, history[-1]) or stop_test(config, step, history[-1], ceiling)
        if status is not None:
            break
        if add_noise is not None:
            add_noise()
        sidelines.checkpoint(step)
    wall_time = sidelines.close()

    if history[-1]["step"] != step - 1:  # a final evaluation at stop
        history.append(_record(step - 1, model, data))
        sidelines.evaluated(history[-1])
    return {"metrics": run_metrics(status, step, wall_time, history, initial_loss, config.convergence_accuracy),
            "history": history, "model": model}


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


def stop_test(config: TrainConfig, step: int, last: dict, ceiling: float) -> str | None:
    """Why training stops after `step` updates, judged on the last evaluation (`last`), or None to go on."""
    if last["train_acc"] >= config.convergence_accuracy and not config.train_to_cap:
        return "converged"
    if step >= NOT_LEARNING_AFTER and last["train_acc"] <= ceiling:
        return "not_learning"
    if step >= config.iterations:
        return "completed" if config.train_to_cap else "cap"
    return None


def chance_ceiling(num_classes: int) -> float:
    """Train accuracy (%) at or below which a run counts as not learning: 1.25x chance, 53 % for binary."""
    return 53.0 if num_classes == 2 else 125.0 / num_classes


def epoch_order(epoch: int, num_examples: int, seed: int, device) -> torch.Tensor:
    """The training set's order in `epoch`: a function of (seed, epoch) alone, so a resumed run sees the same batches."""
    generator = torch.Generator(device=device).manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(num_examples, generator=generator, device=device)


class Batches:
    """The minibatch of each step: the training set in `epoch_order`, reshuffled every epoch."""

    def __init__(self, data: Data, batch_size: int, seed: int):
        self.x, self.y, self.batch_size, self.seed = data.train_x, data.train_y, batch_size, seed
        self.per_epoch = math.ceil(len(self.y) / batch_size)
        self.epoch, self.order = None, None

    def at(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, position = divmod(step, self.per_epoch)
        if epoch != self.epoch:
            self.epoch = epoch
            self.order = epoch_order(epoch, len(self.y), self.seed, self.x.device).split(self.batch_size)
        index = self.order[position]
        return self.x[index], self.y[index]


class Sidelines:
    """What watches the loop without touching its numbers: the progress bar, the clock, the host-side
    divergence check, the caller's `on_evaluation` and `on_checkpoint` hooks."""

    def __init__(self, total: int, step: int, elapsed: float, progress: bool, on_evaluation, on_checkpoint,
                 checkpoint_every: int, snapshot):
        self.total, self.on_evaluation, self.stop_requested = total, on_evaluation, False
        self.on_checkpoint, self.checkpoint_every, self.snapshot = on_checkpoint, checkpoint_every, snapshot
        self.bar = tqdm(total=total, initial=step, disable=not progress, mininterval=1.0, unit="step")
        self.started = time.perf_counter() - elapsed

    def evaluated(self, row: dict):
        """Hand a new history row to `on_evaluation`; a True answer asks the loop to stop."""
        if self.on_evaluation is not None and self.on_evaluation(row):
            self.stop_requested = True

    def interruption(self, step: int, loss: torch.Tensor, last: dict) -> str | None:
        """"diverged" once the loss or the last train loss is not finite, else "stopped" if asked, else None.

        Reading the loss waits for the device, so it is read every CHECK_EVERY steps, at the cap and
        right after an evaluation only.
        """
        status = "stopped" if self.stop_requested else None
        if step % CHECK_EVERY == 0 or step >= self.total or last["step"] == step - 1:
            loss_value = loss.item()
            self.bar.set_postfix(loss=f"{loss_value:.4f}", train_acc=f"{last['train_acc']:.2f}",
                                 test_acc=f"{last['test_acc']:.2f}", refresh=False)
            if not (math.isfinite(loss_value) and math.isfinite(last["train_loss"])):
                status = "diverged"
        self.bar.update(1)
        return status

    def checkpoint(self, step: int):
        if self.on_checkpoint is not None and self.checkpoint_every and step % self.checkpoint_every == 0:
            self.on_checkpoint(self.snapshot(step, self.elapsed()))

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def close(self) -> float:
        """Close the progress bar; the run's wall time so far, the time before any resume included."""
        self.bar.close()
        return self.elapsed()


def checkpoint_state(model, optimizer, noise_generator, history, step, elapsed, initial_loss) -> dict:
    """Everything the rest of a run depends on, as `restore` takes it back (tensors and plain values only)."""
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "noise_generator": noise_generator.get_state(), "history": history, "step": step, "elapsed": elapsed,
            "initial_train_loss": initial_loss}


def restore(state: dict, model, optimizer, noise_generator) -> tuple[list, int, float, float]:
    """Load a `checkpoint_state` into the run's objects; its history, step, elapsed time and initial loss."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    noise_generator.set_state(state["noise_generator"].cpu())
    return state["history"], state["step"], state["elapsed"], state["initial_train_loss"]


def run_metrics(status, steps, wall_time, history, initial_loss, convergence_accuracy) -> dict:
    """metrics.json: how the run ended, its final evaluation and what the whole history says."""
    final = history[-1]
    return {"status": status, "steps": steps, "wall_time": wall_time, "steps_per_second": steps / wall_time,
            **{k: final[k] for k in HISTORY_COLUMNS[1:]}, "initial_train_loss": initial_loss,
            "max_train_loss_ratio": max_train_loss_ratio(history, initial_loss),
            "convergence_step": convergence_step(history, convergence_accuracy)}


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
