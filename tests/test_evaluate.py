"""Chunked evaluation gives the result of one batch, and the chunk fits the activation budget."""

import pytest
import torch
from torch.nn import functional as F

from htsgd.core.evaluate import evaluate, examples_per_chunk
from htsgd.core.models import build_model


@pytest.fixture(scope="module")
def vgg():
    """vgg11_wide (about 37M parameters) once for the module, with 24 random 32x32 images of 10 classes."""
    torch.manual_seed(0)
    model = build_model("vgg11_wide", (3, 32, 32), 10)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(24, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (24,), generator=g)
    return model, x, y


@pytest.fixture(scope="module")
def fcn():
    torch.manual_seed(0)
    return build_model("fcn", (1, 8, 8), 10, 32, 3)


def _one_batch(model, x, y):
    """Loss and accuracy (%) written out directly, without evaluate."""
    with torch.no_grad():
        logits = model(x)
    return F.cross_entropy(logits.double(), y).item(), 100.0 * (logits.argmax(1) == y).double().mean().item()


def _check_chunks(model, x, y, chunks):
    loss, acc = evaluate(model, x, y, chunk_size=len(x))
    direct_loss, direct_acc = _one_batch(model, x, y)
    assert acc == pytest.approx(direct_acc, abs=1e-9)
    assert loss == pytest.approx(direct_loss, rel=1e-9)
    for k in chunks:
        chunk_loss, chunk_acc = evaluate(model, x, y, chunk_size=k)
        assert chunk_acc == acc, k
        assert chunk_loss == pytest.approx(loss, rel=1e-9, abs=0), k


def test_fcn_on_digits_chunked_equals_one_batch(fcn, digits):
    _check_chunks(fcn, digits.test_x, digits.test_y, (1, 5, 7, len(digits.test_x), None))  # None: the default
    assert 0 < evaluate(fcn, digits.test_x, digits.test_y)[0]


def test_vgg11_wide_chunked_equals_one_batch(vgg):
    model, x, y = vgg
    _check_chunks(model, x, y, (5, 7, len(x), None))


def test_vgg11_wide_single_examples_within_float32_rounding(vgg):
    """Chunks of one image agree with one batch to float32 rounding of the forward pass."""
    model, x, y = vgg
    loss, acc = evaluate(model, x, y, chunk_size=len(x))
    one_loss, one_acc = evaluate(model, x, y, chunk_size=1)
    assert one_acc == acc
    assert one_loss == pytest.approx(loss, rel=1e-6)


def test_evaluate_keeps_the_training_mode(fcn, digits):
    fcn.train()
    evaluate(fcn, digits.test_x[:10], digits.test_y[:10], chunk_size=3)
    assert fcn.training
    fcn.eval()
    evaluate(fcn, digits.test_x[:10], digits.test_y[:10], chunk_size=3)
    assert not fcn.training


def test_examples_per_chunk_fits_the_budget(vgg, fcn, digits):
    model, x, _ = vgg
    # the largest activation is the first convolution's: 128 channels x 32 x 32 float32 = 512 KiB per image;
    # 256 MiB / 512 KiB = 512 images
    assert examples_per_chunk(model, x) == 512
    # a small FCN's largest activation is a few hundred bytes: the cap of 10,000
    assert examples_per_chunk(fcn, digits.test_x) == 10_000
