"""How far a handful of judged queries can be trusted: confidence intervals on a metric's mean and on the paired
per-query difference between two retrievers, from a seeded bootstrap (`scipy.stats.bootstrap`, bias-corrected and
accelerated), so the same inputs give the same interval in every process.

Why an interval: a mean over a few queries moves a lot with which queries were judged. Decisions on fewer than about
50 topics are unstable (Voorhees and Buckley, SIGIR 2002; Sakai's topic set size design, 2016), and the usual way to
say whether a difference between two systems is real is a paired test on their per-query differences. The gates decide
on the interval: a drop is allowed only where the whole interval stays within it (a non-inferiority test), a floor only
where the interval's low end clears it.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

DEFAULT_CONFIDENCE = 0.95
RESAMPLES = 10_000
SEED = 0  # fixed: a verification is reproducible wherever it runs


@dataclass(frozen=True)
class Interval:
    """A mean (or a mean difference) and its confidence interval over `queries` judged queries."""

    estimate: float
    low: float
    high: float
    confidence: float
    queries: int
    method: str

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def describe(self) -> str:
        return (f"{self.estimate:+.3f} ({self.confidence:.0%} CI {self.low:+.3f} to {self.high:+.3f}, {self.queries} queries, "
                f"{self.method})")

    def as_dict(self) -> dict:
        return asdict(self)


def mean_interval(values, confidence: float = DEFAULT_CONFIDENCE, resamples: int = RESAMPLES, seed: int = SEED) -> Interval:
    """The mean of per-query values and its bootstrap confidence interval."""
    data = np.asarray(list(values), dtype=np.float64)
    return _bootstrap((data,), lambda x, axis=-1: np.mean(x, axis=axis), float(data.mean()) if len(data) else 0.0, confidence,
                      resamples, seed, "bootstrap")


def paired_difference(new: dict, current: dict, confidence: float = DEFAULT_CONFIDENCE, resamples: int = RESAMPLES,
                      seed: int = SEED) -> Interval:
    """new - current over the queries both have (query id -> value): the mean difference and its paired bootstrap
    interval (queries are resampled together, each keeping its pair)."""
    shared = [query for query in new if query in current]
    differences = np.asarray([new[query] - current[query] for query in shared], dtype=np.float64)
    # resampling queries with their pair is resampling their differences: one sample, half the work of two
    return _bootstrap((differences,), lambda x, axis=-1: np.mean(x, axis=axis), float(differences.mean()) if shared else 0.0,
                      confidence, resamples, seed, "paired bootstrap")


class Evidence:
    """The per-query values (query id -> metric -> value) of the new side and of what serves now (None: nothing does),
    each interval computed once however many gates and reports read it: a bootstrap is the gate's costliest part."""

    def __init__(self, new: dict, current: dict | None, confidence: float = DEFAULT_CONFIDENCE):
        self.new, self.current, self.confidence = new, current, confidence
        self.known: dict = {}

    def mean(self, metric: str) -> Interval:
        return self._once(("mean", metric), lambda: mean_interval([values[metric] for values in self.new.values()], self.confidence))

    def difference(self, metric: str) -> Interval:
        """new - current, paired by query."""
        return self._once(("difference", metric), lambda: paired_difference(
            {query: values[metric] for query, values in self.new.items()},
            {query: values[metric] for query, values in self.current.items()}, self.confidence))

    def _once(self, key: tuple, compute) -> Interval:
        if key not in self.known:
            self.known[key] = compute()
        return self.known[key]


def _bootstrap(data: tuple, statistic, estimate: float, confidence: float, resamples: int, seed: int, method: str) -> Interval:
    from scipy import stats

    count = len(data[0])
    if count < 2 or np.all(data[0] == data[0][0]):  # one query, or all alike: the value, and nothing about its spread
        return Interval(estimate, estimate, estimate, confidence, count, method)
    for kind in ("BCa", "percentile"):  # BCa is undefined when a jackknife makes no difference: percentile then
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = stats.bootstrap(data, statistic, vectorized=True, confidence_level=confidence, n_resamples=resamples,
                                     method=kind, random_state=np.random.default_rng(seed))
        low, high = result.confidence_interval
        if np.isfinite(low) and np.isfinite(high):
            return Interval(estimate, float(low), float(high), confidence, count, f"{method} ({kind})" if kind != "BCa" else method)
    return Interval(estimate, estimate, estimate, confidence, count, method)
