"""Tail-index estimators for trained weights: Hill's estimator and the multivariate block-sum estimator.

The paper's claim is that heavy-tailed SGD leaves the hidden units' weight vectors heavy-tailed
(a few rows of each `[out, in]` weight carry most of its norm), which is what makes the network
compressible. These estimators measure that: `column_tail_indices` returns the tail index alpha of
one layer's rows by both. The block-sum estimate is capped at 2, the largest stable index: below 2
means heavy-tailed, 2 Gaussian-like. Hill is not capped, since it assumes no stable law: it estimates
the tail index of the row norms, which can exceed 2 (a Pareto tail of index 3 reads as about 3), and
anything above 2 means a tail lighter than any law of infinite variance.
"""

import math

import numpy as np


def _as_float64(values) -> np.ndarray:
    """A float64 numpy copy of a numpy array, torch tensor or sequence."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().double().numpy()
    return np.array(values, dtype=np.float64)


def hill(values, k=None) -> float:
    """Hill's estimate of the tail index alpha of the positive samples `values`.

    With X(1) >= X(2) >= ... the samples sorted in decreasing order,
    1/alpha = mean(log X(i), i = 1..k) - log X(k+1): the mean log-excess of the k largest samples
    over the (k+1)-th, which is exactly 1/alpha in mean for a Pareto tail P(X > x) ~ x^-alpha.

    Default k = floor(sqrt(n)) for n usable samples. Hill is consistent only when k -> inf and
    k/n -> 0; within that range k trades variance (about alpha/sqrt(k)) against bias from the part
    of the distribution that is not yet Pareto. That bias is what makes Hill hard to use on
    alpha-stable samples near alpha = 2 (a stable law's Pareto tail starts ever further out as
    alpha -> 2): on |X| of 10^5 symmetric stable draws the bias grows about linearly in k/n, roughly
    +0.2 at k = n/100 for alpha = 1.8 but only +0.03 for alpha = 1.5. Balancing that bias against
    the variance gives an optimal k of about n^(2/3) times a constant; at n = 10^5 and alpha = 1.8
    it lands at k ~ 330, i.e. sqrt(n). sqrt(n) is therefore close to MSE-optimal for alpha near 1.8
    (the range of the paper's noise) and errs to the low-bias side for heavier tails.
    Even so, Hill cannot be accurate to +-0.15 at alpha = 1.8 from 10^5 stable samples with any
    fixed k: at k = sqrt(n) its error there has mean +0.07 and standard deviation 0.10, and a
    larger k trades that variance for more bias. Prefer `block_sum_alpha` for alpha-stable-like
    data; Hill is reported alongside it as a check that needs no stability assumption.

    Non-finite and non-positive values are ignored. Returns nan when fewer than k + 1 values
    (with the default k: fewer than 2) remain, and when the k largest values all equal the
    (k+1)-th: with no excess observed there is no estimate (1/0 would read as alpha = inf, a tail
    lighter than any, which tied values do not show).
    """
    x = _as_float64(values).ravel()
    x = x[np.isfinite(x) & (x > 0)]
    if k is None:
        k = math.isqrt(x.size)
    if k < 1 or x.size < k + 1:
        return math.nan
    top = np.log(np.sort(x)[::-1][: k + 1])
    excess = np.mean(top[:k] - top[k])
    return float(1.0 / excess) if excess > 0 else math.nan


def block_sum_alpha(rows) -> float:
    """The block-sum estimate of the tail index alpha of the rows of `rows` (N rows of dimension d).

    Mohammadi, Mohammadpour and Ogata (2015): the sum of K2 i.i.d. alpha-stable vectors is
    K2^(1/alpha) times one of them in law, so summing blocks of K2 rows shifts the mean log-norm by
    log(K2)/alpha. With the N rows split into K1 = N // K2 blocks (remainder dropped from both terms,
    so that both average over the same rows),
    1/alpha = (mean over blocks of log||block sum|| - mean over their rows of log||row||) / log K2.
    This uses the whole sample rather than only its largest values, so unlike Hill it has little
    bias near alpha = 2. Barsbey et al. (NeurIPS 2021) apply it to a layer's rows.

    Each coordinate is first centred by its median across rows (the stable law's location; the mean
    does not exist for alpha <= 1), and rows that are then exactly zero (the median row itself) are
    dropped, since their log-norm is -inf. Rows with non-finite entries are dropped too.

    Block sizes: K2 = 2, 4, 8, ... up to sqrt(N), so every estimate averages over at least as many
    blocks as each block has rows; the result is the median of alpha over these K2 (robust to one
    block size that is unlucky), capped at 2, the largest stable index (the estimate is
    noise around 2 for Gaussian data, and a block sum that does not grow reads as alpha = inf).
    A 1-D array is N one-dimensional rows. Returns nan when fewer than 4 rows remain.
    """
    x = _as_float64(rows)
    x = x.reshape(len(x), -1)
    x = x[np.isfinite(x).all(axis=1)]
    x = x - np.median(x, axis=0)
    x = x[np.any(x != 0, axis=1)]
    n = len(x)
    if n < 4:
        return math.nan
    log_rows = np.log(np.linalg.norm(x, axis=1))
    alphas = []
    for k2 in 2 ** np.arange(1, int(math.log2(math.sqrt(n))) + 1):
        k1 = n // k2
        block_sums = x[: k1 * k2].reshape(k1, k2, -1).sum(axis=1)
        growth = np.mean(np.log(np.linalg.norm(block_sums, axis=1))) - np.mean(log_rows[: k1 * k2])
        alphas.append(math.log(k2) / growth if growth > 0 else math.inf)
    return float(min(np.median(alphas), 2.0))


def column_tail_indices(weight) -> dict:
    """Tail indices of one layer's weight: Hill on its row norms, the block-sum estimate on its rows.

    `weight` is `[out, in]` (a Linear layer; row i holds hidden unit i's incoming weights, the
    "column" of the paper's `in x out` convention) or `[out, in, k, k]` (a convolution; each output
    filter is flattened into one row). Returns {"hill_alpha": ..., "block_alpha": ...}.
    """
    rows = _as_float64(weight)
    rows = rows.reshape(len(rows), -1)
    return {"hill_alpha": hill(np.linalg.norm(rows, axis=1)), "block_alpha": block_sum_alpha(rows)}
