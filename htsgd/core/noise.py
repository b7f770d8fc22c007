"""Heavy-tailed iterate noise: an alpha-stable sampler in torch, and the paper's three noise types.

The sampler is the Chambers-Mallows-Stuck method in Weron's form for the S1 parameterization
(`scipy.stats.levy_stable`'s default). Its uniforms come from the caller's torch generator on the
target device, so a run is reproducible and nothing crosses to the host.

It never returns NaN or inf. A naive sampler does: V = +-pi/2 at the ends of the uniform's interval
makes cos V zero (or, with pi/2 rounded up, negative), and log 0 appears in the exponential draw.
Here V is drawn through its distance t to the nearer end (V = +-(pi/2 - pi t)), taken from a 53-bit
uniform (40 bits on a CPU's float32 path, see `_float32_uniforms`) so the heavy tail is resolved out
to about 1e-16 (1e-12) in probability; cos V is computed as
sin(pi t), never as the cosine of a rounded pi/2; t is bounded away from 0; and every result is
clamped to its dtype's finite range.

Speed: symmetric noise with 1 <= alpha < 2 (types 1 and 2) runs in float32 with angles written so
that no value cancels near the ends, which keeps every intermediate finite (see
`_symmetric_from_uniforms`), on a CPU from one random 64-bit word per draw; every other case runs in
float64 and in log space.
"""

import math
import numbers

import torch

from .config import NOISE_TYPES
from .models import hidden_layers

# Smallest distance t (in units of pi) of V from +-pi/2: t = |y| with y on a 2**-53 lattice, and the
# lattice point t = 0 stands for [0, 2**-54), whose middle is 2**-55.
T_MIN = 2.0 ** -55
# Smallest float64 exponential draw: -log1p(-u) with u on a 2**-53 lattice is 0 only at u = 0, which
# stands for [0, 2**-53).
W_MIN = 2.0 ** -54
TINY64 = torch.finfo(torch.float64).tiny
CPU_CHUNK = 1 << 17  # draws per pass on a CPU: about 4 MB of work buffers, which stay in cache


def stable(alpha, beta, shape, *, scale=1.0, generator=None, device=None, dtype=None) -> torch.Tensor:
    """Alpha-stable draws S(alpha, beta, scale, 0) in the S1 parameterization, finite always.

    `alpha` in (0, 2], `beta` in [-1, 1], `scale` > 0. Drawn on `device` (default: the generator's,
    else the CPU) from `generator` (default: torch's global one), returned as `dtype` (default
    float32). Values beyond the dtype's range are clamped to its largest finite value.
    """
    alpha, beta, scale = _check_stable_args(alpha, beta, scale)
    dtype = torch.float32 if dtype is None else dtype
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point type, got {dtype}")
    shape = _check_shape(shape)
    if device is None:
        device = generator.device if generator is not None else torch.device("cpu")
    device = torch.device(device)
    if generator is not None and generator.device.type != device.type:
        raise ValueError(f"the generator is on {generator.device} but the draws were asked for on {device}")
    out = torch.empty(shape, dtype=dtype, device=device)
    scratch = _Scratch(device)
    _fill_stable_(out, alpha, beta, generator, scratch)
    if scale != 1.0:
        _rescale_(out, alpha, beta, scale)
    return out


def make_noise(config, model, generator):
    """The callable that adds one step's noise to the hidden layers in place, or None for no noise."""
    if config.iterate_noise == 0:
        return None
    alpha = config.iterate_noise_alpha
    return IterateNoise([layer.weight for _, layer in hidden_layers(model)], config.iterate_noise, alpha,
                        step_scale=config.iterate_noise_scale * config.lr ** (1.0 / alpha),
                        generator=generator, per_filter=config.iterate_noise_filter)


class IterateNoise:
    """Adds one step of a noise type (`config.NOISE_TYPES`: what each draws) to the given weights, in place.

    Type 1: one symmetric alpha-stable scalar per hidden unit (a Linear weight's row; a convolution's
    (out, in) kernel, or its whole output filter with `per_filter`) added to all its entries. Type 2:
    i.i.d. symmetric alpha-stable entries. At alpha = 2 both draw the stable law's limit, N(0, 2).
    Type 3: elliptic, a standard Gaussian per entry times sqrt(A), with one
    A ~ S(alpha/2, 1, cos(pi alpha/4)**(2/alpha)) per unit (per kernel for convolutions; `per_filter`
    concerns type 1 only, as in the original), defined for alpha < 2.
    Every draw is multiplied by `step_scale`, sigma * lr**(1/alpha). Work buffers are allocated once
    and reused by every layer and step.
    """

    def __init__(self, weights, noise_type: int, alpha: float, step_scale: float, generator, per_filter=False):
        kinds = {t: kind for t, kind in NOISE_TYPES.items() if kind.per}
        if noise_type not in kinds:
            raise ValueError(f"noise type must be one of {tuple(kinds)}, got {noise_type!r}")
        alpha, _, _ = _check_stable_args(alpha, 0.0, 1.0)
        self.kind = kinds[noise_type]
        if self.kind.elliptic and alpha == 2.0:
            raise ValueError(f"type-{noise_type} noise needs alpha < 2: its mixing law "
                             "S(alpha/2, 1, cos(pi alpha/4)**(2/alpha)) degenerates at alpha = 2 (its scale is 0); "
                             "use type 1 or 2 for Gaussian noise")
        if not (math.isfinite(step_scale) and step_scale >= 0):
            raise ValueError(f"step_scale must be a finite number >= 0, got {step_scale!r}")
        self.weights = list(weights)
        self.alpha, self.step_scale = alpha, float(step_scale)
        self.per_filter = per_filter
        self.generator = generator
        self.mixing_scale = math.cos(math.pi * alpha / 4) ** (2 / alpha)
        self._scratch = {}
        self._calls, self._graph = 0, None

    def unit_shape(self, weight: torch.Tensor) -> tuple:
        """The shape of the per-unit draws, broadcastable against `weight`."""
        if weight.dim() == 2:
            return (weight.shape[0], 1)
        if self.per_filter and not self.kind.elliptic:
            return (weight.shape[0],) + (1,) * (weight.dim() - 1)
        return tuple(weight.shape[:2]) + (1,) * (weight.dim() - 2)

    @torch.no_grad()
    def __call__(self):
        """Add one step's noise. On CUDA the second call records the step as a CUDA graph and later
        calls replay it: one launch instead of dozens of short kernels, which otherwise cost more
        than the noise's arithmetic. The first call runs eagerly and allocates every buffer."""
        if self._graph is None and self._calls == 1 and self._graphable():
            self._graph = torch.cuda.CUDAGraph()
            self._graph.register_generator_state(self.generator)
            with torch.cuda.graph(self._graph):
                self._add_noise()
        if self._graph is not None:
            self._graph.replay()
        else:
            self._add_noise()
        self._calls += 1

    def _graphable(self) -> bool:
        return (self.generator is not None and self.generator.device.type == "cuda"
                and all(w.is_cuda for w in self.weights) and hasattr(torch.cuda.CUDAGraph, "register_generator_state"))

    def _add_noise(self):
        for weight in self.weights:
            scratch = self._scratch.setdefault(weight.device, _Scratch(weight.device))
            if self.kind.elliptic:
                mixing = scratch("units", self.unit_shape(weight), weight.dtype)
                _fill_stable_(mixing, self.alpha / 2, 1.0, self.generator, scratch)
                mixing.mul_(self.mixing_scale).sqrt_().mul_(self.step_scale)
                gaussian = scratch("entries", weight.shape, weight.dtype).normal_(generator=self.generator)
                weight.addcmul_(gaussian, mixing)
            else:
                shape = self.unit_shape(weight) if self.kind.per == "unit" else weight.shape
                draws = scratch("draws", shape, weight.dtype)
                _fill_stable_(draws, self.alpha, 0.0, self.generator, scratch)
                weight.add_(draws, alpha=self.step_scale)


class _Scratch:
    """Flat work buffers on one device, grown to the largest request and then reused without allocating."""

    def __init__(self, device):
        self.device = torch.device(device)
        self._flat = {}

    def __call__(self, name: str, shape, dtype) -> torch.Tensor:
        numel = math.prod(shape)
        flat = self._flat.get((name, dtype))
        if flat is None or flat.numel() < numel:
            flat = torch.empty(numel, dtype=dtype, device=self.device)
            self._flat[(name, dtype)] = flat
        return flat[:numel].view(shape)


def _check_stable_args(alpha, beta, scale):
    """Plain floats for the distribution's parameters, or a ValueError that says what is allowed."""
    values = []
    for name, value, allowed, text in (("alpha", alpha, lambda v: 0 < v <= 2, "in (0, 2]"),
                                       ("beta", beta, lambda v: -1 <= v <= 1, "in [-1, 1]"),
                                       ("scale", scale, lambda v: 0 < v < math.inf, "finite and > 0")):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not allowed(float(value)):
            raise ValueError(f"{name} must be a number {text}, got {value!r}")
        values.append(float(value))
    return values


def _check_shape(shape) -> tuple:
    dims = (shape,) if isinstance(shape, int) else tuple(shape) if isinstance(shape, (tuple, list, torch.Size)) else None
    if dims is None or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in dims):
        raise ValueError(f"shape must be an int or a sequence of ints >= 0, got {shape!r}")
    return dims


def _fill_stable_(out: torch.Tensor, alpha: float, beta: float, generator, scratch: _Scratch) -> None:
    """Fill the contiguous `out` with S1(alpha, beta, 1, 0) draws, all finite in `out`'s dtype.

    On a CPU the draws are made CPU_CHUNK at a time, so that the work buffers stay in cache and
    no large one is ever allocated; on an accelerator in one pass, to launch few kernels.
    """
    if alpha == 2.0:  # beta has no effect at alpha = 2: N(0, 2)
        out.normal_(0.0, math.sqrt(2.0), generator=generator)
        return
    flat = out.view(-1)
    cpu = out.device.type == "cpu"
    chunk = CPU_CHUNK if cpu else max(flat.numel(), 1)
    symmetric = beta == 0.0 and alpha >= 1.0
    u_dtype = torch.float32 if symmetric and out.dtype != torch.float64 else torch.float64
    for start in range(0, flat.numel(), chunk):
        part = flat[start:start + chunk]
        if cpu and u_dtype == torch.float32:  # where the generator is slow: see _float32_uniforms
            words = scratch("words", part.shape, torch.int64).random_(-2 ** 63, None, generator=generator)
            _symmetric_from_uniforms(*_float32_uniforms(words, scratch), alpha, part, scratch)
            continue
        y = scratch("y", part.shape, torch.float64).uniform_(-0.5, 0.5, generator=generator)
        u = None if alpha == 1.0 and symmetric else scratch("u", part.shape, u_dtype).uniform_(generator=generator)
        if symmetric:
            _symmetric_from_uniforms(y, u, alpha, part, scratch)
        else:
            _general_from_uniforms(y, u, alpha, beta, part, scratch)


def _float32_uniforms(words: torch.Tensor, scratch: _Scratch):
    """The float32 path's y and u (see `_symmetric_from_uniforms`), as float32, from one random 64-bit word per draw.

    Used on a CPU, where torch's generator is most of that path's cost: a word is two of its 32-bit
    outputs where a float64 and a float32 uniform take three (on a GPU the uniforms are cheap, and
    the passes here would cost more than they save). The words' 32-bit halves are independent: the
    first n give y's top 32 bits with its sign; each of the other n gives y's last 8 bits (its low
    byte) and u's 24 (the rest). y = (s + 1/2) 2**-40, s a uniform signed 40-bit integer: the midpoint of its
    2**-40 cell, so |y| >= 2**-41; u = k 2**-24, torch's float32 uniform lattice. The draws with
    |y| < 2**-41, probability 2**-40 ~ 9.1e-13 each, take |y| = 2**-41: that much of the tail, |X|
    beyond about 3e6 at alpha = 1.75 (W = log 2), is cut off; a 53-bit y cuts off 2**-53 ~ 1.1e-16.
    """
    n = words.numel()
    halves = words.view(torch.int32)
    first, second = halves[:n], halves[n:]
    bits = scratch("bits", (n,), torch.int32)
    y, u = scratch("y32", (n,), torch.float32).copy_(first), scratch("u32", (n,), torch.float32)
    y.add_(u.copy_(torch.bitwise_and(second, 0xFF, out=bits)), alpha=2.0 ** -8).add_(2.0 ** -9).mul_(2.0 ** -32)
    u.copy_(torch.bitwise_right_shift(second, 8, out=bits)).mul_(2.0 ** -24).add_(0.5)  # signed 24 bits + 1/2
    return y, u


def _rescale_(x: torch.Tensor, alpha: float, beta: float, scale: float) -> None:
    """Turn S1(alpha, beta, 1, 0) draws into S1(alpha, beta, scale, 0) in place (S1 shifts at alpha = 1)."""
    x.mul_(scale)
    if alpha == 1.0 and beta != 0.0:
        x.add_(2 / math.pi * beta * scale * math.log(scale))
    largest = torch.finfo(x.dtype).max
    x.clamp_(-largest, largest)


def _symmetric_from_uniforms(y: torch.Tensor, u, alpha: float, out: torch.Tensor, scratch: _Scratch) -> None:
    """Symmetric S1(alpha, 0, 1, 0) draws for 1 <= alpha < 2 from uniforms, in float32 (float64 for float64 out).

    y ~ U[-1/2, 1/2] (float64, or float32 from `_float32_uniforms`) gives V's sign and t = |y| its
    distance to the nearer end in units of pi; u ~ U[0, 1) gives W = -log1p(-u) ~ Exp(1) (unused at
    alpha = 1: Cauchy, cot(pi t)).
    With c = (1 - alpha/2) pi, X = sign(y) sin(alpha|V|) / cos V * (cos((1-alpha)V) / (W cos V))**p,
    p = (1 - alpha)/alpha, where sin(alpha|V|) = sin(c + alpha pi t) and cos((1-alpha)V) =
    sin(c + (alpha-1) pi t): sums of non-negative terms that never cancel, so in float32
    cos((1-alpha)V) > 0, cos V >= sin(pi 2**-55) ~ 8.7e-17 and W in [0, 16.7] bound |X| below
    1e16 * 1e9 (p > -1/2). W = 0 gives +inf ** p = 0, the correct limit.
    """
    work_dtype = torch.float64 if out.dtype == torch.float64 else torch.float32
    direct = out.dtype == work_dtype
    x = out if direct else scratch("x", out.shape, work_dtype)
    sign = y if y.dtype == work_dtype else scratch("sign", y.shape, work_dtype).copy_(y)
    t = torch.abs(sign, out=scratch("t", y.shape, work_dtype)).clamp_min_(T_MIN)
    if alpha == 1.0:
        torch.mul(t, math.pi, out=x).tan_().reciprocal_()
    else:
        c = (1 - alpha / 2) * math.pi
        minus_cos_v = torch.mul(t, -math.pi, out=scratch("a", y.shape, work_dtype)).sin_()
        w_cos_v = u.neg_().log1p_().mul_(minus_cos_v)  # (-W)(-cos V) >= 0
        ratio = torch.mul(t, (alpha - 1) * math.pi, out=scratch("b", y.shape, work_dtype)).add_(c).sin_()
        if x.device.type == "cpu":  # ** p: on a CPU pow_ is compute-bound and a third slower than this
            ratio.div_(w_cos_v).log2_().mul_((1 - alpha) / alpha).exp2_()
        else:  # elsewhere one memory-bound pass beats three
            ratio.div_(w_cos_v).pow_((1 - alpha) / alpha)
        torch.mul(t, alpha * math.pi, out=x).add_(c).sin_()  # sin(alpha |V|)
        x.mul_(ratio).div_(minus_cos_v)
    torch.copysign(x, sign, out=x)
    if not direct:
        largest = torch.finfo(out.dtype).max
        out.copy_(x.clamp_(-largest, largest))


def _general_from_uniforms(y: torch.Tensor, u: torch.Tensor, alpha: float, beta: float, out: torch.Tensor,
                           scratch: _Scratch) -> None:
    """S1(alpha, beta, 1, 0) draws for any alpha in (0, 2) and beta in [-1, 1], in float64 and log space.

    Weron's formulas with V = sign(y) (pi/2 - pi t), t = |y|, cos V = sin(pi t) and W = -log1p(-u)
    (`u` is overwritten). Every logarithm's argument is kept >= the smallest normal float64, so the
    log-space sum is finite; the result is clamped to `out`'s dtype.
    """
    buffer = lambda name: scratch(name, y.shape, torch.float64)
    largest = torch.finfo(out.dtype).max
    t = torch.abs(y, out=buffer("t")).clamp_min_(T_MIN)
    log_w = u.neg_().log1p_().neg_().clamp_min_(W_MIN).log_()
    log_cos_v = torch.mul(t, math.pi, out=buffer("a")).sin_().log_()
    if alpha == 1.0:
        beta_sign = buffer("b").fill_(1.0).copysign_(y).mul_(beta)
        # pi/2 + beta V, written so that it is exact where it vanishes (beta sign(y) = -1, t -> 0)
        shift = torch.mul(beta_sign, t, out=buffer("c")).mul_(-math.pi).add_(beta_sign.add_(1.0).mul_(math.pi / 2))
        tan_v = torch.mul(t, math.pi, out=buffer("b")).tan_().reciprocal_().copysign_(y)
        log_shift = torch.clamp_min(shift, TINY64, out=t).log_()
        log_term = log_w.add_(log_cos_v).add_(math.log(math.pi / 2)).sub_(log_shift)
        x = shift.mul_(tan_v).sub_(log_term, alpha=beta).mul_(2 / math.pi).clamp_(-largest, largest)
    else:
        tan_half_pi_alpha = math.tan(math.pi * alpha / 2)
        theta0 = math.atan(beta * tan_half_pi_alpha)
        log_s = math.log1p((beta * tan_half_pi_alpha) ** 2) / (2 * alpha)
        v = torch.mul(t, -math.pi, out=buffer("b")).add_(math.pi / 2).copysign_(y)
        sin_term = torch.mul(v, alpha, out=buffer("c")).add_(theta0).sin_()
        log_x = v.mul_(1 - alpha).sub_(theta0).cos_().clamp_min_(TINY64).log_()  # log cos((1-alpha)V - theta0)
        log_x.sub_(log_w).mul_((1 - alpha) / alpha)
        log_x.add_(torch.abs(sin_term, out=t).clamp_min_(TINY64).log_()).sub_(log_cos_v, alpha=1 / alpha).add_(log_s)
        x = log_x.exp_().clamp_max_(largest).copysign_(sin_term)
        if alpha < 1.0 and beta == 1.0:  # the support is a half-line; rounding must not cross its end
            x.clamp_(min=0.0)
        elif alpha < 1.0 and beta == -1.0:
            x.clamp_(max=0.0)
    out.copy_(x)
