"""The explore views' wording that more than one of them uses: accuracies, a training's outcome, and their HTML
as plain text (what a headless run prints)."""

import html
import re


def pct(value) -> str:
    return f"{value:.2f} %"


def metrics_text(metrics: dict) -> str:
    """A training's outcome: its status, steps and final accuracies."""
    return (f"{metrics['status']} after {metrics['steps']} steps, train {pct(metrics['train_acc'])}, "
            f"test {pct(metrics['test_acc'])}")


def plain_text(markup: str) -> str:
    """A view's HTML message as plain text: line breaks kept, tags dropped, entities decoded."""
    return html.unescape(re.sub(r"</?(b|small)>", "", markup.replace("<br>", "\n")))
