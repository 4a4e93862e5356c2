"""A source's health verdict from its recent runs' signals, judged against its own healthy past.

A pure function, no SQL: archive/health.py gathers each run's signals (a `run_signals` row) and
hands `judge` the source's latest runs and its baseline, the runs before them that were judged ok.
The daemon calls it after every run (daemon/health.py); bench/source_health.py measures it.

Verdicts, the first that applies:

- ``blocked``  most answers of the last run were 403/429 or challenge pages;
- ``failing``  the last run failed or timed out, or it found nothing to fetch because its feeds,
  sitemaps or start pages failed;
- ``degraded`` an extraction signal of the new articles moved far from the source's history:
  median body words halved, or a share (no title, no date, no author, bodies of site chrome or
  repeating another article, identical titles, extraction candidates disagreeing, pages that were
  not articles) at half or more where it usually is low;
- ``quiet``    fewer new articles over the last runs than the source's usual rate makes likely;
- ``ok``.

"Usual" is the median of the baseline, its spread the MAD (median absolute deviation, scaled to a
standard deviation): a few odd runs move neither, so a weekend lull or one long article is no
alarm. Nothing relative is judged before `min_history` baseline runs.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from config.durations import format_duration

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    Run = Mapping[str, Any]
    Check = Callable[[Sequence[Run], "_Usual", "HealthRules"], str | None]
    Count = Callable[[Run], int]

VERDICTS = ("ok", "quiet", "degraded", "blocked", "failing")
# A silence is unheard of when it is this many times the longest one of the healthy history.
SILENCE_MARGIN = 2.0
MAD_TO_SD = 1.4826  # the MAD of a normal distribution times this is its standard deviation


@dataclass(frozen=True)
class HealthRules:
    """The thresholds of `judge`; the defaults are what the daemon uses (bench/source_health.py)."""

    history_runs: int = 500  # baseline: at most this many of the source's runs judged ok (3 weeks hourly)
    min_history: int = 5  # baseline runs needed before a relative signal is judged
    recent_runs: int = 6  # the latest runs judged (quiet adds up to this many)
    pooled_runs: int = 3  # extraction signals pool at most this many of them ...
    min_articles: int = 3  # ... until they hold this many new articles
    blocked_share: float = 0.5  # share of answers that were 403/429 or challenge pages
    share_floor: float = 0.5  # a share signal is off only from here ...
    share_jump: float = 0.3  # ... this far above the source's usual share ...
    share_chance: float = 1e-3  # ... and when so many had less than this chance at the usual share
    spread: float = 3.0  # median words: off under half the usual median and this many (scaled) MADs below it
    quiet_chance: float = 1e-4  # quiet when so few new articles had less than this chance, and the
    # silence twice as long as any in the baseline (without that, the square of this chance)


@dataclass(frozen=True)
class Verdict:
    verdict: str
    reason: str
    evidence: tuple[str, ...] = ()


# Share signals of the new articles (weighted by new articles), and of article pages.
ARTICLE_SHARES = (
    ("chrome_share", "bodies that are mostly site chrome"),
    ("same_title_share", "new articles with the title of another"),
    ("no_title_share", "new articles without a title"),
    ("no_date_share", "new articles without a date"),
    ("no_author_share", "new articles without an author"),
    ("disagree_share", "pages where extraction candidates disagreed"),
)
REPEAT_SHARE = ("repeat_share", "bodies repeating another article of the source")
PAGE_SHARE = ("not_article_share", "article pages that were not articles")


def judge(recent: Sequence[Run], baseline: Sequence[Run], rules: HealthRules | None = None) -> Verdict:
    """The verdict on `recent` (the latest runs, oldest first, the one just ended last) against
    `baseline` (earlier runs judged ok, any order)."""
    rules = rules or HealthRules()
    if not recent:
        raise ValueError("judge needs at least the run that just ended")
    for check in (_blocked, _failing):
        if found := check(recent, baseline, rules):
            return found
    if len(baseline) < rules.min_history:
        return Verdict("ok", f"learning the source's usual: {len(baseline)} of {rules.min_history} runs so far")
    for check in (_degraded, _quiet):
        if found := check(recent, baseline, rules):
            return found
    usual = statistics.median(run["articles_new"] for run in baseline)
    return Verdict("ok", f"{_count(recent[-1]['articles_new'], 'new article')}, usually {_figure(usual)} a run")


# --- absolute verdicts: they need no history -----------------------------------------------------------


def _blocked(recent: Sequence[Run], baseline: Sequence[Run], rules: HealthRules) -> Verdict | None:
    def is_blocked(run: Run) -> bool:
        refused = run["blocked_answers"] + run["challenge_pages"]
        return refused > 0 and refused >= rules.blocked_share * max(run["pages_fetched"], 1)

    runs = _streak(recent, is_blocked)
    if not runs:
        return None
    last = recent[-1]
    what = []
    if last["blocked_answers"]:
        what.append(f"{_count(last['blocked_answers'], 'answer')} 403/429")
    if last["challenge_pages"]:
        what.append(_count(last["challenge_pages"], "challenge page"))
    usual = _median_of(baseline, "blocked_share")
    reason = f"{' and '.join(what)} of {_count(last['pages_fetched'], 'answer')}"
    if usual is not None:
        reason += f", usually {_percent(usual)}"
    return Verdict("blocked", reason + _over(runs), _samples(recent[-runs:], "sample_failures"))


def _failing(recent: Sequence[Run], baseline: Sequence[Run], rules: HealthRules) -> Verdict | None:
    def is_failing(run: Run) -> bool:
        return run["status"] != "ok" or _found_nothing(run)

    runs = _streak(recent, is_failing)
    if not runs:
        return None
    last = recent[-1]
    if last["status"] != "ok":
        reason = f"the run {last['status'].replace('_', ' ')}: {last['finish_reason'] or 'no reason recorded'}"
    else:
        failures, answers = _count(last["failed_pages"], "failure"), _count(last["pages_fetched"], "answer")
        reason = f"nothing to fetch: {failures} of {answers}"
        if last["top_failure"]:
            reason += f" ({last['top_failure']})"
    return Verdict("failing", reason + _over(runs), _samples(recent[-runs:], "sample_failures"))


def _found_nothing(run: Run) -> bool:
    """No article page to fetch (not even one already stored or unchanged) because seeds failed."""
    return run["article_pages"] + run["skipped_stored"] + run["not_modified"] == 0 and run["failed_pages"] > 0


# --- relative verdicts: against the baseline ------------------------------------------------------------


def _degraded(recent: Sequence[Run], baseline: Sequence[Run], rules: HealthRules) -> Verdict | None:
    """A signal off in the latest runs and, on their own articles, in the runs before them too: two
    independent looks, so one odd batch of articles is no alarm."""
    usual = _Usual(baseline)
    for count, checks in _CHECKS:
        latest = _pooled(recent, rules, count)
        earlier = _pooled(recent[: len(recent) - len(latest)], rules, count) if latest else []
        if not earlier:
            continue
        for check in checks:
            if check(latest, usual, rules) and check(earlier, usual, rules):
                window = [*earlier, *latest]
                reason = check(window, usual, rules) or check(latest, usual, rules)
                return Verdict("degraded", f"{reason}{_over(len(window))}", _samples(window, "sample_articles"))
    return None


def _pooled(recent: Sequence[Run], rules: HealthRules, count: Count) -> list[Run]:
    """The fewest latest runs (at most `pooled_runs`) that hold `min_articles` of `count`, or []."""
    total = 0
    for taken, run in enumerate(reversed(recent[-rules.pooled_runs :]), 1):
        total += count(run)
        if total >= rules.min_articles:
            return list(recent[-taken:])
    return []


class _Usual:
    """The baseline's figures, each worked out once per verdict (the checks ask for them repeatedly)."""

    def __init__(self, baseline: Sequence[Run]) -> None:
        self.runs = baseline
        self._shares: dict[str, tuple[float, int]] = {}
        self._spreads: dict[str, tuple[float, float, int]] = {}

    def share(self, column: str, weight: Count) -> tuple[float, int]:
        """(pooled share, runs that have one)."""
        if column not in self._shares:
            share, _ = _pooled_share(self.runs, column, weight)
            self._shares[column] = share, sum(1 for r in self.runs if r[column] is not None)
        return self._shares[column]

    def median_mad(self, column: str) -> tuple[float, float, int]:
        """(median, scaled MAD, runs that have one)."""
        if column not in self._spreads:
            values = [r[column] for r in self.runs if r[column] is not None]
            self._spreads[column] = (*_median_mad(values), len(values)) if values else (0.0, 0.0, 0)
        return self._spreads[column]


def _words_off(window: Sequence[Run], baseline: _Usual, rules: HealthRules) -> str | None:
    """'median body words 41, usually 520' when the window's median is under half the usual one and
    `spread` MADs below it."""
    now = _weighted_median([(r["median_words"], _new(r)) for r in window if r["median_words"] is not None])
    usual, spread, runs = baseline.median_mad("median_words")
    if now is None or runs < rules.min_history:
        return None
    if now <= usual / 2 and usual - now >= rules.spread * spread:
        return f"median body words {now:.0f}, usually {usual:.0f}"
    return None


def _share_check(column: str, label: str, weight: Count) -> Check:
    def off(window: Sequence[Run], baseline: _Usual, rules: HealthRules) -> str | None:
        """'<label> 90%, usually 2%' when the share is high, far above the source's pooled share, and
        that many would be unlikely at the usual share (binomial tail under `share_chance`)."""
        now, n = _pooled_share(window, column, weight)
        usual, runs = baseline.share(column, weight)
        if n == 0 or runs < rules.min_history:
            return None
        hits = round(now * n)
        far = now >= rules.share_floor and now - usual >= rules.share_jump
        if far and at_least_chance(hits, n, min(max(usual, 0.02), 0.98)) < rules.share_chance:
            return f"{label} {_percent(now)} ({hits} of {n}), usually {_percent(usual)}"
        return None

    return off


def _pooled_share(runs: Sequence[Run], column: str, weight: Count) -> tuple[float, int]:
    """(share, count) over the runs together: each run's share weighted by its count."""
    pairs = [(r[column], weight(r)) for r in runs if r[column] is not None and weight(r)]
    total = sum(n for _, n in pairs)
    return (sum(share * n for share, n in pairs) / total if total else 0.0), total


def at_least_chance(hits: int, n: int, p: float) -> float:
    """P(X >= hits) for X binomial(n, p)."""
    return sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(hits, n + 1))


def _new(run: Run) -> int:
    return int(run["articles_new"])


def _new_or_copied(run: Run) -> int:
    return int(run["articles_new"] + run["articles_copied"])


def _article_pages(run: Run) -> int:
    return int(run["article_pages"])


# What each group of checks is pooled by: new articles; pages stored or found to be copies; article pages.
_CHECKS: tuple[tuple[Count, tuple[Check, ...]], ...] = (
    (_new, (_words_off, *(_share_check(column, label, _new) for column, label in ARTICLE_SHARES))),
    (_new_or_copied, (_share_check(*REPEAT_SHARE, _new_or_copied),)),
    (_article_pages, (_share_check(*PAGE_SHARE, _article_pages),)),
)


def _quiet(recent: Sequence[Run], baseline: Sequence[Run], rules: HealthRules) -> Verdict | None:
    """So few new articles over the last runs that the source's usual rate makes it unlikely, and a
    silence twice as long as any in its healthy history (or far less likely still: night-time lulls
    are in that history, so they are no alarm)."""
    last = recent[-1]
    if len(recent) > 1 and recent[-2].get("verdict") == "quiet" and not last["articles_new"]:
        # Quiet until an article comes: the usual rate changes with the hour, the silence does not end.
        silence = last["hours_since_new_article"]
        return Verdict("quiet", "still no new article" + (f": the last came {_hours(silence)} ago" if silence else ""))
    counts = [run["articles_new"] for run in _alike(last, baseline, rules)]
    usual, spread = _median_mad(counts)
    if usual <= 0:  # most runs bring nothing (a source crawled more often than it publishes): the
        usual = _trimmed_mean(counts)  # mean rate, without the busiest tenth of runs (a first crawl)
    if usual <= 0:
        return None
    silence = recent[-1]["hours_since_new_article"]
    # Silences that ended: those of runs up to the last one with new articles (the baseline also
    # holds the runs of this silence judged ok before it was long enough to tell).
    last_new = max((r["run_id"] for r in [*recent, *baseline] if r["articles_new"]), default=0)
    longest = max((r["hours_since_new_article"] or 0.0 for r in baseline if r["run_id"] <= last_new), default=0.0)
    unheard_of = silence is not None and silence > SILENCE_MARGIN * longest
    new = 0
    for runs, run in enumerate(reversed(recent), 1):
        new += run["articles_new"]
        chance = at_most_chance(new, mean=runs * usual, variance=runs * max(usual, spread**2))
        if chance < rules.quiet_chance * (1 if unheard_of else rules.quiet_chance):
            reason = f"{_count(new, 'new article')} in the last {runs} runs, usually {_figure(usual)} a run"
            if silence is not None:
                reason += f"; the last new article came {_hours(silence)} ago"
                reason += f" (longest silence before: {_hours(longest)})"
            return Verdict("quiet", reason)
    # A source crawled more often than it publishes (most runs bring nothing) is judged by the clock.
    sparse = statistics.median(r["articles_new"] for r in baseline) == 0
    return _silent(recent[-1], baseline, longest, rules) if unheard_of and sparse else None


def _silent(last: Run, baseline: Sequence[Run], longest: float, rules: HealthRules) -> Verdict | None:
    """Quiet by the clock, for a source that publishes less often than it is crawled: no new article
    for so long that the source's usual rate per hour makes it unlikely."""
    times = [datetime.fromisoformat(r["finished_at"]) for r in baseline if r["finished_at"]]
    span = (max(times) - min(times)).total_seconds() / 3600 if len(times) > 1 else 0.0
    silence = last["hours_since_new_article"]
    if span <= 0 or silence is None:
        return None
    counts = [r["articles_new"] for r in baseline]
    per_hour = (statistics.median(counts) or _trimmed_mean(counts)) * (len(times) - 1) / span
    chance = math.exp(-per_hour * silence)
    if chance >= rules.quiet_chance:
        return None
    reason = f"no new article for {_hours(silence)}, usually {_figure(per_hour * 24)} a day"
    return Verdict("quiet", reason + f" (longest silence before: {_hours(longest)})")


def at_most_chance(count: int, *, mean: float, variance: float) -> float:
    """P(X <= count) for a count with this mean and variance: Poisson, or negative binomial when the
    source's counts spread more than a Poisson's (variance > mean, as news rates do across a week)."""
    if variance <= mean:
        return sum(math.exp(k * math.log(mean) - mean - math.lgamma(k + 1)) for k in range(count + 1))
    r = mean * mean / (variance - mean)  # NB(r, p): mean r(1-p)/p, variance r(1-p)/p^2
    p = mean / variance
    return sum(
        math.exp(math.lgamma(k + r) - math.lgamma(r) - math.lgamma(k + 1) + r * math.log(p) + k * math.log1p(-p))
        for k in range(count + 1)
    )


# --- small helpers -------------------------------------------------------------------------------------


def _streak(recent: Sequence[Run], holds: Callable[[Run], bool]) -> int:
    """How many of the latest runs in a row `holds` is true of (0 when the last one is fine)."""
    runs = 0
    for run in reversed(recent):
        if not holds(run):
            break
        runs += 1
    return runs


def _median_mad(values: Sequence[float]) -> tuple[float, float]:
    usual = statistics.median(values)
    return usual, MAD_TO_SD * statistics.median(abs(v - usual) for v in values)


def _weighted_median(pairs: Sequence[tuple[float, int]]) -> float | None:
    """The median of values each counted `n` times (a run's median words, by its new articles)."""
    pairs = sorted((value, n) for value, n in pairs if n > 0)
    total = sum(n for _, n in pairs)
    seen = 0
    for value, n in pairs:
        seen += n
        if 2 * seen >= total:
            return value
    return None


def _alike(last: Run, baseline: Sequence[Run], rules: HealthRules) -> Sequence[Run]:
    """The baseline runs that ended at the time of day of `last` (within two hours) on the same kind
    of day (weekend or weekday): news has hours and a week, and a Sunday night is compared with
    Sunday nights. Fewer than `min_history` of them: the same hours any day; then the whole baseline."""
    hour = _hour_of(last)
    if hour is None:
        return baseline
    near = [r for r in baseline if _hours_apart(_hour_of(r), hour) <= 2]
    weekend = _is_weekend(last)
    for runs in ([r for r in near if _is_weekend(r) == weekend], near):
        if len(runs) >= rules.min_history:
            return runs
    return baseline


def _is_weekend(run: Run) -> bool:
    return date.fromisoformat(run["finished_at"][:10]).weekday() >= 5


def _hour_of(run: Run) -> int | None:
    """The hour of day (UTC) the run ended, from its ISO 8601 time."""
    finished = run["finished_at"]
    return int(finished[11:13]) if finished and len(finished) >= 13 else None


def _hours_apart(hour: int | None, other: int) -> int:
    if hour is None:
        return 24
    apart = abs(hour - other)
    return min(apart, 24 - apart)


def _trimmed_mean(values: Sequence[float], cut: float = 0.1) -> float:
    kept = sorted(values)[: max(1, len(values) - math.ceil(cut * len(values)))]
    return sum(kept) / len(kept)


def _median_of(runs: Sequence[Run], column: str) -> float | None:
    values = [r[column] for r in runs if r[column] is not None]
    return statistics.median(values) if values else None


def _samples(runs: Sequence[Run], column: str, limit: int = 3) -> tuple[str, ...]:
    """A few URLs that show the problem, newest run first."""
    urls: list[str] = []
    for run in reversed(runs):
        urls += [u for u in (run[column] or ()) if u not in urls]
    return tuple(urls[:limit])


def _over(runs: int) -> str:
    return " in the last run" if runs == 1 else f" over the last {runs} runs"


def _percent(share: float) -> str:
    return f"{share:.0%}"


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"


def _hours(hours: float) -> str:
    return format_duration(timedelta(hours=hours))


def _figure(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.1f}"
