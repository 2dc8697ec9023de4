"""Paired comparisons over seeds, the statistics of Task 2e (`reporting.task2e`): each
variant's per-seed differences from its baseline (`paired`, `Paired`), their mean, 95 %
interval (Student's t over the seeds, its distribution computed here without scipy, with the
sample standard deviation of `training.record.mean_std`) and the paired t-test's p-value;
Holm's step-down correction of a family of tests; and the verdicts and notes that say what
the seeds could and could not tell apart.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

from training.record import mean_std

ALPHA = 0.05  # the intervals are 95 %; a verdict's test is two-sided at this level


# --------------------------------------------------------------------------- Student's t
def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: int) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom."""
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_two_sided_p(t: float, df: int) -> float:
    """P(|T| >= |t|): the two-sided p-value of a t statistic."""
    return incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


@cache
def t_quantile(q: float, df: int) -> float:
    """The q quantile of Student's t with `df` degrees of freedom (0 < q < 1), by bisection
    of `t_cdf`."""
    if q < 0.5:
        return -t_quantile(1.0 - q, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < q:
        high *= 2.0
    for _ in range(200):
        mid = (low + high) / 2.0
        low, high = (mid, high) if t_cdf(mid, df) < q else (low, mid)
    return (low + high) / 2.0


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with `df` degrees of freedom (a 95 % interval)."""
    return t_quantile(1.0 - ALPHA / 2, df)


# --------------------------------------------------------------------------- paired stats
@dataclass(frozen=True)
class Paired:
    """Per-seed differences a - b of one measure, their mean and 95 % interval, and the seeds
    of a left without a pair: (seed, why)."""
    seeds: tuple[int, ...]
    diffs: tuple[float, ...]
    unpaired: tuple[tuple[int, str], ...] = ()

    @property
    def n(self) -> int:
        return len(self.diffs)

    @property
    def mean(self) -> float:
        return float(np.mean(self.diffs)) if self.diffs else math.nan

    @property
    def standard_error(self) -> float | None:
        """s / sqrt(n), s the sample standard deviation of the differences; None below two
        seeds."""
        return None if self.n < 2 else mean_std(self.diffs)[1] / math.sqrt(self.n)

    def half_width_at(self, alpha: float) -> float | None:
        """Half the width of the two-sided (1 - alpha) t interval: t(1 - alpha/2, n-1) s/√n,
        the smallest mean difference these seeds could tell from zero at that level."""
        se = self.standard_error
        return None if se is None else t_quantile(1.0 - alpha / 2, self.n - 1) * se

    @property
    def half_width(self) -> float | None:
        """The 95 % interval's half-width, t(0.975, n-1) s/√n; None below two seeds."""
        return self.half_width_at(ALPHA)

    @property
    def interval(self) -> tuple[float, float] | None:
        hw = self.half_width
        return None if hw is None else (self.mean - hw, self.mean + hw)

    @property
    def p_value(self) -> float | None:
        """The paired t-test's two-sided p-value for a mean difference of 0; None below two
        seeds."""
        se = self.standard_error
        if se is None:
            return None
        if se == 0:
            return 1.0 if self.mean == 0 else 0.0
        return t_two_sided_p(self.mean / se, self.n - 1)

    def sign(self) -> int | None:
        """+1 when the whole interval is above 0, -1 below, 0 when it holds 0; None without
        an interval."""
        if self.interval is None:
            return None
        lo, hi = self.interval
        return 1 if lo > 0 else -1 if hi < 0 else 0

    def text(self, fmt: str = "+.4f", scale: float = 1.0) -> str:
        if not self.diffs:
            return "-"
        if self.interval is None:
            return f"{scale * self.mean:{fmt}} (1 seed)"
        lo, hi = self.interval
        return f"{scale * self.mean:{fmt}} [{scale * lo:{fmt}}, {scale * hi:{fmt}}]"


def paired(runs: dict[str, dict[int, dict]], a: str, b: str, key: str) -> Paired:
    """`key` of variant a minus variant b, seed by seed: a seed of a is paired only with b's
    run of the same seed made in the same `setting` (device, precision, thread count), and
    both must have measured it; the others are `unpaired`, each with why."""
    seeds, diffs, unpaired = [], [], []
    for seed in sorted(runs.get(a, {})):
        ma, mb = runs[a][seed], runs.get(b, {}).get(seed)
        if mb is None:
            unpaired.append((seed, f"{b} has no run of seed {seed}"))
        elif ma.get("setting") != mb.get("setting"):
            unpaired.append((seed, (f"{a} ran on {ma.get('setting')}, {b} on "
                                   f"{mb.get('setting')}")))
        elif ma[key] is not None and mb[key] is not None:
            seeds.append(seed)
            diffs.append(ma[key] - mb[key])
    return Paired(tuple(seeds), tuple(diffs), tuple(unpaired))


def unpaired_note(name: str, p: Paired) -> str | None:
    """What `paired` left out of a variant's comparison and why; None when nothing."""
    if not p.unpaired:
        return None
    whys: dict[str, list[int]] = {}
    for seed, why in p.unpaired:
        whys.setdefault(why.replace(f" of seed {seed}", " of that seed"), []).append(seed)
    parts = [f"seed{'s' if len(s) > 1 else ''} {', '.join(map(str, s))}: {why}"
             for why, s in whys.items()]
    return (f"{name}: {len(p.unpaired)} seed{'s' if len(p.unpaired) > 1 else ''} left "
            f"unpaired ({'; '.join(parts)}); a pair is made only within one device, CPU, "
            "precision and thread count.")


def holm(p_values: dict[str, float]) -> dict[str, float]:
    """Holm's step-down adjusted p-values of a family of tests: with m tests sorted by their
    p-values, the k-th smallest (k from 1) becomes max over j <= k of min(1, (m - j + 1)
    p_(j)); a test is rejected at level alpha when its adjusted p-value is below alpha, which
    controls the chance of any false call in the family at alpha."""
    order = sorted(p_values, key=lambda name: p_values[name])
    m, running, adjusted = len(order), 0.0, {}
    for k, name in enumerate(order):
        running = max(running, min(1.0, (m - k) * p_values[name]))
        adjusted[name] = running
    return adjusted


def holm_levels(p_values: dict[str, float]) -> dict[str, float]:
    """The level each test of the family is held to by Holm's method: alpha / (m - k + 1)
    for the k-th smallest p-value."""
    order = sorted(p_values, key=lambda name: p_values[name])
    return {name: ALPHA / (len(order) - k) for k, name in enumerate(order)}


def detectable(size: float) -> str:
    """'smaller than 1.23 points, if any': what a not-distinguishable gain in accuracy
    (`size`: the half-width, a fraction) could still be."""
    return f"smaller than {100 * size:.2f} points, if any"


def verdict(p: Paired, significant: bool | None = None, size: float | None = None) -> str:
    """'better', 'worse', or 'not distinguishable: smaller than X points, if any' (X: `size`,
    by default the 95 % half-width, in points of accuracy); `significant`: a corrected
    test's answer instead of the 95 % interval's."""
    sign = p.sign()
    if sign is None:
        return "not measured" if p.n == 0 else "one seed: no interval"
    called = sign != 0 if significant is None else significant
    if called:
        return "better" if p.mean > 0 else "worse"
    return "not distinguishable: " + detectable(p.half_width if size is None else size)


def separation_note(n: int) -> str:
    """What n paired seeds can and cannot separate."""
    if n < 2:
        return ("With one seed there is no interval: a difference cannot be told "
                "from seed noise.")
    k = t975(n - 1) / math.sqrt(n)
    return (f"With {n} seeds the 95 % interval is the mean difference ± {t975(n - 1):.2f} "
            f"s/√{n} = ± {k:.2f} s, s being the sample standard deviation of the per-seed "
            f"differences: a difference is called only when it is more than {k:.1f} times "
            "that seed-to-seed spread away from 0; 'not distinguishable' means these seeds "
            "could not tell, not that the two are equal.")


def claim_verdict(p: Paired, expected: int, a: str = "", b: str = "") -> str:
    sign = p.sign()
    if sign is None:
        return (f"not measured: python task2_experiments.py --only {a} {b}" if p.n == 0
                else "one seed: no interval")
    if expected == 0:
        return (f"consistent: not distinguishable at {p.n} seeds" if sign == 0 else
                "does not hold: a difference")
    if sign == 0:
        return f"not distinguishable at {p.n} seeds"
    return "supported" if sign == expected else "contradicted"
