"""The alpha-stable sampler against SciPy's levy_stable, its finiteness, and the three noise types.

Distribution tests use fixed seeds, 1e5 draws and a p-value threshold of 1e-4: a correct sampler
fails one of them with probability 1e-4 per seed change, while errors of a few percent in scale
or location give p-values far below it (see test_ks_check_has_teeth).
"""

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.stats import levy_stable

from htsgd.core import noise
from htsgd.core.config import NO_NOISE, NOISE_TYPES, TrainConfig, make_config
from htsgd.core.models import build_model, hidden_layers
from htsgd.core.noise import IterateNoise, make_noise, stable
from htsgd.core.train import train

DRAWS = 100_000
P_MIN = 1e-4


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


def ks_pvalue(sample, alpha, beta, scale=1.0, points=256) -> float:
    """Kolmogorov-Smirnov p-value of `sample` against levy_stable's exact CDF (S1).

    The CDF (slow in SciPy) is evaluated at `points` evenly spaced order statistics, on both sides of
    each jump of the empirical CDF. That distance is at most the full KS distance, so the p-value
    is conservative: it can only make a false failure rarer.
    """
    x = np.sort(np.asarray(sample, dtype=np.float64))
    n = len(x)
    index = np.linspace(0, n - 1, points).astype(int)
    cdf = levy_stable.cdf(x[index], alpha, beta, scale=scale)
    distance = max(np.max(np.abs((index + 1) / n - cdf)), np.max(np.abs(index / n - cdf)))
    return stats.kstwo.sf(distance, n)


def mixing_scale(alpha):
    return math.cos(math.pi * alpha / 4) ** (2 / alpha)


# --- the sampler's distribution -------------------------------------------------------------------

@pytest.mark.parametrize("alpha", [0.5, 1.0, 1.5, 1.75, 1.9, 2.0])
def test_symmetric_draws_follow_levy_stable(alpha):
    x = stable(alpha, 0.0, DRAWS, generator=generator(1))
    assert x.dtype == torch.float32 and x.shape == (DRAWS,)
    assert ks_pvalue(x, alpha, 0.0) > P_MIN


@pytest.mark.parametrize("alpha", [1.5, 1.75, 1.9])
def test_type3_mixing_law_follows_levy_stable(alpha):
    x = stable(alpha / 2, 1.0, DRAWS, scale=mixing_scale(alpha), generator=generator(2))
    assert x.min() >= 0  # totally skewed with alpha/2 < 1: supported on [0, inf)
    assert ks_pvalue(x, alpha / 2, 1.0, mixing_scale(alpha)) > P_MIN


@pytest.mark.parametrize("alpha, beta, scale", [(1.75, 0.0, 3.0), (1.0, 0.0, 0.25), (0.5, 0.0, 2.0), (2.0, 0.0, 0.5),
                                                (1.0, 0.5, 2.0), (1.0, -1.0, 0.5), (1.5, -0.5, 1.5), (0.7, 0.3, 1.0)])
def test_scale_and_skew_follow_levy_stable(alpha, beta, scale):
    """Scale, and skewed laws including alpha = 1, whose S1 form shifts by (2/pi) beta scale log(scale)."""
    x = stable(alpha, beta, DRAWS, scale=scale, generator=generator(3))
    assert ks_pvalue(x, alpha, beta, scale) > P_MIN


@pytest.mark.parametrize("alpha, beta", [(1.75, 0.0), (0.875, 1.0), (1.0, 0.5)])
def test_two_sample_against_scipys_own_sampler(alpha, beta):
    ours = stable(alpha, beta, DRAWS, generator=generator(4)).numpy()
    scipys = levy_stable.rvs(alpha, beta, size=2 * DRAWS, random_state=np.random.default_rng(4))
    assert stats.ks_2samp(ours, scipys).pvalue > P_MIN


def test_ks_check_has_teeth():
    assert ks_pvalue(stable(1.75, 0.0, DRAWS, scale=1.05, generator=generator(1)), 1.75, 0.0) < 1e-8
    assert ks_pvalue(stable(1.5, 0.0, DRAWS, generator=generator(1)), 1.75, 0.0) < 1e-8


def test_float32_fast_path_agrees_with_the_float64_general_formula():
    """Same uniforms, two independent formulas: the float32 rewrite of CMS and Weron's in float64."""
    g = generator(5)
    y = torch.empty(DRAWS, dtype=torch.float64).uniform_(-0.5, 0.5, generator=g)
    y[:6] = torch.tensor([-0.5, -2.0 ** -53, 2.0 ** -53, 1e-9, -1e-12, 0.5 - 2.0 ** -53], dtype=torch.float64)
    u = torch.empty(DRAWS, dtype=torch.float64).uniform_(0.01, 0.99, generator=g)
    for alpha in (1.0, 1.3, 1.75, 1.99):
        fast = torch.empty(DRAWS)
        noise._symmetric_from_uniforms(y, u.float(), alpha, fast, noise._Scratch("cpu"))
        general = torch.empty(DRAWS, dtype=torch.float64)
        noise._general_from_uniforms(y, u.clone(), alpha, 0.0, general, noise._Scratch("cpu"))
        torch.testing.assert_close(fast.double(), general, rtol=2e-5, atol=1e-6)


def test_tail_is_resolved_far_beyond_float32_uniforms():
    """A 24-bit uniform caps |X| near 1e4 at alpha = 1.75; a 53-bit one reaches the 1e-16 quantile, and the
    float32 path's 40-bit y (smallest |y| 2**-41) the 1e-12 one."""
    x = torch.empty(2)
    y = torch.tensor([2.0 ** -53, 2.0 ** -41], dtype=torch.float64)
    noise._symmetric_from_uniforms(y, torch.tensor([0.5, 0.5]), 1.75, x, noise._Scratch("cpu"))
    assert 1e8 < x[0].item() < 1e10 and 1e6 < x[1].item() < 1e7


def test_float32_uniforms_from_one_word_reach_their_lattices_ends():
    """y = (s + 1/2) 2**-40 from 40 bits (the first half-words and the second's low byte), u = k 2**-24 from the
    second half-words' other 24 bits: the extreme words give |y| = 2**-41 and 1/2 (rounded), u = 0 and 1 - 2**-24."""
    first = [0, -1, 2 ** 31 - 1, -2 ** 31]
    second = [0, -1, 2 ** 31 - 1, -2 ** 31]
    words = torch.tensor(first + second, dtype=torch.int32).view(torch.int64)
    y, u = noise._float32_uniforms(words, noise._Scratch("cpu"))
    assert y.dtype == u.dtype == torch.float32
    assert y.tolist() == [2.0 ** -41, -2.0 ** -41, 0.5, -0.5]
    assert u.tolist() == [0.5, 0.5 - 2.0 ** -24, 1 - 2.0 ** -24, 0.0]


# --- never a non-finite value ---------------------------------------------------------------------

@pytest.mark.slow  # a soak: the interval ends are checked exactly below, and ten million draws of six laws
def test_hundred_million_draws_are_finite():
    g = generator(6)
    for _ in range(10):
        assert torch.isfinite(stable(1.75, 0.0, 10_000_000, generator=g)).all()


@pytest.mark.parametrize("alpha, beta", [(0.5, 0.0), (1.0, 0.0), (1.9, 0.0), (0.95, 1.0), (1.0, 0.5), (1.5, -1.0)])
def test_ten_million_draws_are_finite(alpha, beta):
    assert torch.isfinite(stable(alpha, beta, 10_000_000, generator=generator(7))).all()


ENDS_Y = [-0.5, -0.5 + 2.0 ** -53, -2.0 ** -53, 0.0, 2.0 ** -53, 0.25, 0.5 - 2.0 ** -53, 0.5]


@pytest.mark.parametrize("alpha", [1.0, 1.0 + 1e-12, 1.001, 1.5, 1.75, 1.999, 2 - 1e-12])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_symmetric_transform_is_finite_at_the_interval_ends(alpha, dtype):
    work = torch.float64 if dtype == torch.float64 else torch.float32
    ends_u = [0.0, 2.0 ** -53, 2.0 ** -24, 0.5, 1 - 2.0 ** -24, 1 - torch.finfo(work).eps / 2]
    y, u = (v.flatten() for v in torch.meshgrid(
        torch.tensor(ENDS_Y, dtype=torch.float64), torch.tensor(ends_u, dtype=torch.float64), indexing="ij"))
    out = torch.empty(len(y), dtype=dtype)
    noise._symmetric_from_uniforms(y, u.to(work), alpha, out, noise._Scratch("cpu"))
    assert torch.isfinite(out).all()


def test_symmetric_transform_is_finite_for_every_float32_exponential_input():
    """All 2**24 values a float32 uniform can take, against the extreme values of y."""
    u = torch.arange(2 ** 24, dtype=torch.float32) * 2.0 ** -24
    ends = torch.tensor(ENDS_Y, dtype=torch.float64)
    y = ends[torch.arange(2 ** 24) % len(ends)]
    out = torch.empty(2 ** 24)
    for alpha in (1.01, 1.75, 1.9999):
        noise._symmetric_from_uniforms(y, u.clone(), alpha, out, noise._Scratch("cpu"))
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("alpha", [0.01, 0.3, 0.5, 0.999, 1.0, 1.001, 1.5, 1.999])
@pytest.mark.parametrize("beta", [-1.0, -0.5, 0.0, 0.5, 1.0])
def test_general_transform_is_finite_at_the_interval_ends(alpha, beta):
    ends_u = [0.0, 2.0 ** -53, 0.5, 1 - 2.0 ** -53]
    y, u = (v.flatten() for v in torch.meshgrid(
        torch.tensor(ENDS_Y, dtype=torch.float64), torch.tensor(ends_u, dtype=torch.float64), indexing="ij"))
    for dtype in (torch.float32, torch.float64, torch.float16):
        out = torch.empty(len(y), dtype=dtype)
        noise._general_from_uniforms(y, u.clone(), alpha, beta, out, noise._Scratch("cpu"))
        assert torch.isfinite(out).all()


def test_huge_scale_and_narrow_dtypes_clamp_instead_of_overflowing():
    assert torch.isfinite(stable(1.75, 0.0, 10_000, scale=1e36, generator=generator())).all()
    assert torch.isfinite(stable(0.2, 0.0, 10_000, generator=generator(), dtype=torch.float16)).all()
    assert torch.isfinite(stable(1.0, 1.0, 10_000, scale=1e30, generator=generator())).all()


# --- the sampler's interface ----------------------------------------------------------------------

def test_dtype_device_shape_and_reproducibility():
    x = stable(1.75, 0.0, (3, 4), generator=generator(8))
    assert x.shape == (3, 4) and x.dtype == torch.float32 and x.device.type == "cpu"
    assert torch.equal(x, stable(1.75, 0.0, [3, 4], generator=generator(8)))
    assert not torch.equal(x, stable(1.75, 0.0, (3, 4), generator=generator(9)))
    assert stable(0.5, 0.2, 5, generator=generator(), dtype=torch.float64).dtype == torch.float64
    assert stable(1.5, 0.0, 0, generator=generator()).shape == (0,)


def test_draws_come_from_the_given_generator_only():
    torch.manual_seed(0)
    state = torch.get_rng_state()
    stable(1.75, 0.0, 100, generator=generator())
    stable(0.875, 1.0, 100, generator=generator())
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("kwargs, message", [
    (dict(alpha=0.0), "alpha must be a number in \\(0, 2\\]"),
    (dict(alpha=2.5), "alpha"),
    (dict(alpha=float("nan")), "alpha"),
    (dict(alpha="1.5"), "alpha"),
    (dict(beta=1.5), "beta must be a number in \\[-1, 1\\]"),
    (dict(scale=0.0), "scale must be a number finite and > 0"),
    (dict(scale=float("inf")), "scale"),
    (dict(shape=(2, -1)), "shape"),
    (dict(shape=2.5), "shape"),
    (dict(dtype=torch.int64), "floating-point"),
    (dict(device="meta"), "generator is on cpu"),
])
def test_bad_arguments_are_refused_clearly(kwargs, message):
    args = dict(alpha=1.5, beta=0.0, shape=(4,), generator=generator()) | kwargs
    with pytest.raises(ValueError, match=message):
        stable(args.pop("alpha"), args.pop("beta"), args.pop("shape"), **args)


# --- the noise types on the paper's models --------------------------------------------------------

def fcn():
    torch.manual_seed(0)
    return build_model("fcn", (1, 8, 8), 10, width=32, depth=3)


@pytest.fixture(scope="module")
def vgg():
    torch.manual_seed(0)
    return build_model("vgg11_wide", (3, 32, 32), 10)


def noise_config(noise_type, alpha=1.75, scale=0.5, lr=0.1, per_filter=False):
    """A TrainConfig built directly, so that combinations the CLI refuses can reach the noise code."""
    return TrainConfig(iterate_noise=noise_type, iterate_noise_alpha=alpha, iterate_noise_scale=scale, lr=lr,
                       iterate_noise_filter=per_filter)


def added_noise(model, config, seed=0):
    """One step's noise, as {parameter name: what was added}, starting from zeroed hidden weights."""
    hidden = {f"{name}.weight" for name, _ in hidden_layers(model)}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in hidden:
                p.zero_()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    make_noise(config, model, generator(seed))()
    delta = {name: p.detach() - before[name] for name, p in model.named_parameters()}
    untouched = {name for name, d in delta.items() if not d.any()}
    assert untouched == set(delta) - hidden  # noise reaches every hidden weight and nothing else
    return {name: delta[name] for name in delta if name in hidden}


def moves_everywhere(delta) -> bool:
    """Every entry moves, up to exact zeros of the float32 Gaussian (torch's draws 0.0 with chance ~2**-24)."""
    return delta.count_nonzero() >= delta.numel() * (1 - 1e-5)


def expected_noise(model, config, seed=0):
    """The same step drawn directly from an identically seeded generator, in the same order."""
    g, alpha = generator(seed), config.iterate_noise_alpha
    step = config.iterate_noise_scale * config.lr ** (1 / alpha)
    expected = {}
    for name, layer in hidden_layers(model):
        w = layer.weight
        per_unit = (w.shape[0], 1) if w.dim() == 2 else (w.shape[0], w.shape[1], 1, 1)  # row, or (out, in) kernel
        if config.iterate_noise == 1:
            if config.iterate_noise_filter and w.dim() == 4:
                per_unit = (w.shape[0], 1, 1, 1)
            draw = stable(alpha, 0.0, per_unit, generator=g).expand_as(w)
        elif config.iterate_noise == 2:
            draw = stable(alpha, 0.0, w.shape, generator=g)
        else:
            mixing = stable(alpha / 2, 1.0, per_unit, scale=mixing_scale(alpha), generator=g)
            draw = mixing.sqrt() * torch.randn(w.shape, generator=g)
        expected[f"{name}.weight"] = step * draw
    return expected


@pytest.mark.parametrize("noise_type, alpha", [(1, 1.75), (1, 2.0), (2, 1.75), (2, 2.0), (3, 1.75), (3, 1.2)])
def test_fcn_noise_is_the_documented_draw_times_sigma_lr_to_one_over_alpha(noise_type, alpha):
    config = noise_config(noise_type, alpha=alpha, scale=0.3, lr=0.05)
    model = fcn()
    added = added_noise(model, config, seed=11)
    assert list(added) == ["hidden.0.weight", "hidden.1.weight"]
    for name, expected in expected_noise(model, config, seed=11).items():
        torch.testing.assert_close(added[name], expected, rtol=1e-5, atol=1e-7)


def test_fcn_type1_shifts_each_row_by_one_scalar_and_types_2_3_do_not():
    for noise_type in (1, 2, 3):
        for delta in added_noise(fcn(), noise_config(noise_type)).values():
            assert moves_everywhere(delta)
            rows_constant = torch.equal(delta, delta[:, :1].expand_as(delta))
            assert rows_constant == (noise_type == 1)
            assert delta[:, 0].unique().numel() == delta.shape[0]  # and each row by its own draw


def test_vgg_type1_is_per_kernel_or_per_filter(vgg):
    for per_filter in (False, True):
        for delta in added_noise(vgg, noise_config(1, per_filter=per_filter)).values():
            out, inp = delta.shape[:2]
            per_kernel = delta[:, :, :1, :1]
            assert torch.equal(delta, per_kernel.expand_as(delta))
            assert torch.equal(delta, delta[:, :1, :1, :1].expand_as(delta)) == per_filter
            assert per_kernel.unique().numel() > 0.99 * (out if per_filter else out * inp)  # float32 ties aside


def test_vgg_type1_gaussian_is_n02_per_kernel_and_per_filter(vgg):
    for per_filter in (False, True):
        config = noise_config(1, alpha=2.0, per_filter=per_filter)
        added = added_noise(vgg, config, seed=5)
        for name, expected in expected_noise(vgg, config, seed=5).items():
            torch.testing.assert_close(added[name], expected, rtol=1e-5, atol=1e-7)
        draws = torch.cat([d[:, :1, :1, :1].flatten() if per_filter else d[:, :, :1, :1].flatten() for d in added.values()])
        step = config.iterate_noise_scale * config.lr ** 0.5
        variance = (draws / step).var().item()  # thousands of draws: within a few percent of 2
        assert variance == pytest.approx(2.0, rel=0.15)


def one_step_draws(noise_type, alpha, sigma, unit) -> np.ndarray:
    """DRAWS independent draws of one step of `noise_type` with step scale sigma: one per `unit` (a row of a Linear
    weight, a kernel or a filter of a convolution's, an entry), or for type 3 one entry per row."""
    weight = torch.zeros((DRAWS, 2) if unit in ("row", "entry") else (DRAWS, 2, 1, 1))
    IterateNoise([weight], noise_type, alpha, step_scale=sigma, generator=generator(12), per_filter=unit == "filter")()
    draws = weight.flatten() if unit == "kernel" else weight[:, 0].flatten()  # a 1x1 kernel is one entry
    return draws[:DRAWS].double().numpy()


@pytest.mark.parametrize("noise_type, unit, alpha", [
    *((1, unit, alpha) for unit in ("row", "kernel", "filter") for alpha in (2.0, 1.9999)),
    (2, "entry", 2.0), (2, "entry", 1.9999), (3, "row", 1.9999)])
def test_at_and_near_alpha_2_every_noise_is_its_stable_laws_gaussian_limit(noise_type, unit, alpha):
    """Types 1 and 2 draw S(alpha, 0, sigma), whose alpha -> 2 limit is N(0, 2 sigma**2): at alpha = 2 too, per row,
    kernel and filter alike (the original drew N(0, 1) per row). Type 3 is a standard Gaussian times sqrt(A), i.e.
    S(alpha, 0, sigma/sqrt(2)): its limit is N(0, sigma**2) (it refuses alpha = 2 itself)."""
    sigma = 0.3
    limit = stats.norm(scale=sigma if noise_type == 3 else math.sqrt(2) * sigma)
    draws = one_step_draws(noise_type, alpha, sigma, unit)
    assert stats.kstest(draws, limit.cdf).pvalue > P_MIN
    assert stats.kstest(draws, stats.norm(scale=1.1 * limit.std()).cdf).pvalue < 1e-8  # it tells a 10 % error apart


def test_vgg_types_2_and_3_match_their_direct_draws(vgg):
    for noise_type in (2, 3):
        config = noise_config(noise_type, alpha=1.9)
        added = added_noise(vgg, config, seed=3)
        expected = expected_noise(vgg, config, seed=3)
        assert set(added) == set(expected) and "features.0.weight" not in added
        for name in added:
            torch.testing.assert_close(added[name], expected[name], rtol=1e-5, atol=1e-9)
            assert moves_everywhere(added[name]) and not torch.equal(added[name], added[name][:, :, :1, :1].expand_as(added[name]))


def test_same_seed_same_noise_and_a_new_seed_new_noise():
    config = noise_config(2)
    first, again, other = (added_noise(fcn(), config, seed) for seed in (5, 5, 6))
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not any(torch.equal(first[k], other[k]) for k in first)


def test_type0_is_no_noise_and_type3_refuses_alpha_2():
    assert make_noise(noise_config(0), fcn(), generator()) is None
    with pytest.raises(ValueError, match="type-3 noise needs alpha < 2"):
        make_noise(noise_config(3, alpha=2.0), fcn(), generator())
    with pytest.raises(ValueError, match="noise type"):
        IterateNoise([], 4, 1.5, 1.0, generator())


# --- end to end -----------------------------------------------------------------------------------

@pytest.mark.parametrize("noise_type", [t for t in NOISE_TYPES if t != NO_NOISE])  # every type a config may ask for
def test_training_with_noise_runs_and_the_output_layer_trains(digits, noise_type):
    config = make_config(dict(dataset="digits", width=64, lr=0.05, batch_size_train=128, eval_freq=10,
                              convergence_accuracy=100.0, iterations=40, seed=2, iterate_noise=noise_type,
                              iterate_noise_alpha=1.75, iterate_noise_scale=0.01))
    torch.manual_seed(config.seed)
    initial_output = build_model("fcn", digits.input_shape, digits.num_classes, config.width, config.depth).output.weight
    result = train(config, digits, progress=False)
    metrics, model = result["metrics"], result["model"]
    assert metrics["status"] == "cap" and metrics["steps"] == 40
    assert all(math.isfinite(metrics[k]) for k in ("train_loss", "test_loss", "train_acc", "test_acc"))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert not torch.allclose(model.output.weight, initial_output)
    assert metrics["train_acc"] > result["history"][0]["train_acc"] + 40.0  # it learns through the noise


@pytest.mark.gpu
@pytest.mark.parametrize("noise_type", [1, 2, 3])
def test_cuda_graph_replay_is_reproducible_and_follows_the_law(noise_type):
    """From the second step on, CUDA replays a recorded graph: it must still draw fresh, correctly
    distributed noise every step, the same for the same seed, and leave the output layer alone."""
    def steps(seed, calls=4):
        model = build_model("fcn", (1, 8, 8), 10, width=4096, depth=2).cuda()
        with torch.no_grad():
            for p in model.parameters():
                p.zero_()
        add = IterateNoise([model.hidden[0].weight], noise_type, 1.75, step_scale=1.0,
                           generator=torch.Generator(device="cuda").manual_seed(seed))
        deltas = []
        for _ in range(calls):
            before = model.hidden[0].weight.detach().clone()
            add()
            deltas.append((model.hidden[0].weight.detach() - before).cpu())
        assert add._graph is not None and not model.output.weight.any()
        return deltas

    first, again, other = steps(0), steps(0), steps(1)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[2], other[2]) and not torch.equal(first[2], first[3])
    replayed = first[2][:, 0] if noise_type == 1 else first[2].flatten()[:DRAWS]
    if noise_type == 1:
        assert torch.equal(first[2], replayed[:, None].expand_as(first[2]))
    if noise_type in (1, 2):
        assert ks_pvalue(replayed.double().numpy(), 1.75, 0.0) > P_MIN
    else:  # elliptic: each row is Gaussian times one sqrt(A); its squared norm / 64 estimates A
        assert torch.isfinite(first[2]).all() and (first[2].abs().sum(1) > 0).all()
