"""Turn what a person typed after `/pcp` into the thing they meant.

Exact names, keys and aliases win; then fuzzy matching (rapidfuzz) forgives typos when one
answer is clearly best; otherwise the closest few are offered as suggestions. A miss is
never an error: the person always gets somewhere to go next.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from rapidfuzz import fuzz, process
from rapidfuzz.distance import DamerauLevenshtein
from sqlmodel import Session

from scorecard import queries


class Kind(StrEnum):
    METRIC = "metric"
    AREA = "area"
    FUNDING_STREAM = "funding_stream"
    FUNDING = "funding"
    SCORECARD = "scorecard"
    HELP = "help"
    IMPORT_HELP = "import_help"
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class Target:
    kind: Kind
    key: str
    label: str
    command: str  # what to type to get it: "knife-crime", "funding vrp"


@dataclass(frozen=True)
class Resolution:
    kind: Kind
    query: str
    key: str | None = None
    command: str = ""  # the canonical way to ask for it again (buttons carry this, not the raw text)
    corrected_from: str | None = None  # set when a typo was forgiven
    suggestions: list[Target] = field(default_factory=list)


HELP_WORDS = {"", "help", "usage", "?", "commands", "how"}
SCORECARD_WORDS = {"scorecard", "score card", "summary", "overview", "all metrics", "all", "metrics", "dashboard"}
FUNDING_WORDS = {"funding", "funding table", "budget", "budgets", "money", "grants", "commissioning budget"}
FUNDING_PREFIXES = ("funding ", "fund ", "budget ")
IMPORT_WORDS = {"import", "upload", "imports", "import figures", "import data", "upload figures"}

ACCEPT_SCORE = 88.0  # a fuzzy match this good, and clearly ahead, is answered directly
CLEAR_LEAD = 5.0
SUGGEST_SCORE = 55.0
PREFIX_SCORE = 90.0  # "knif" is the start of "knife crime": as good as a near miss
MAX_SUGGESTIONS = 3


def normalise(text: str) -> str:
    """Lower case, '&' as 'and', punctuation and hyphens as spaces: 'Knife-Crime' -> 'knife crime'."""
    text = text.lower().replace("&", " and ").replace("’", "").replace("'", "")
    return re.sub(r"[^a-z0-9]+", " ", text).strip()


_INDEX_CACHE: dict[tuple[str, int, bool], dict[str, Target]] = {}


def _index(*, session: Session, streams_only: bool = False) -> dict[str, Target]:
    """Every phrase a person might type, mapped to what it names; rebuilt only when the data changes."""
    version = queries.data_version_key(session=session)
    key = (*version, streams_only)
    if key not in _INDEX_CACHE:
        for stale in [k for k in _INDEX_CACHE if k[:2] != version and k[0] == version[0]]:
            _INDEX_CACHE.pop(stale, None)
        _INDEX_CACHE[key] = _build_index(session=session, streams_only=streams_only)
    return _INDEX_CACHE[key]


def _build_index(*, session: Session, streams_only: bool) -> dict[str, Target]:
    phrases: dict[str, Target] = {}

    def add(target: Target, *names: str) -> None:
        for name in names:
            phrases.setdefault(normalise(name), target)

    for stream in queries.all_streams(session=session):
        target = Target(Kind.FUNDING_STREAM, stream.key, stream.name, f"funding {stream.key}")
        add(target, stream.key, stream.name, *stream.aliases)
    if streams_only:
        return phrases
    for metric in queries.all_metrics(session=session):
        target = Target(Kind.METRIC, metric.key, metric.short_name, metric.key)
        add(target, metric.key, metric.short_name, metric.name, *metric.aliases)
    for area in queries.all_areas(session=session):
        command = f"priority {area.number}" if area.kind == "priority" else area.key
        target = Target(Kind.AREA, area.key, area.short_name, command)
        add(target, area.key, area.name, area.short_name, *area.aliases)
        if area.number is not None:
            add(target, f"priority {area.number}", f"p{area.number}", f"priority{area.number}")
        if area.kind == "theme":
            add(target, f"theme {area.short_name}", f"theme {area.key}")
    return phrases


def resolve(text: str, *, session: Session) -> Resolution:
    query = normalise(text)
    if query in HELP_WORDS:
        return Resolution(Kind.HELP, text, command="help")
    if query in SCORECARD_WORDS:
        return Resolution(Kind.SCORECARD, text, command="scorecard")
    if query in FUNDING_WORDS:
        return Resolution(Kind.FUNDING, text, command="funding")
    if query in IMPORT_WORDS:
        return Resolution(Kind.IMPORT_HELP, text, command="import")
    streams_only = query.startswith(FUNDING_PREFIXES)
    if streams_only:
        query = query.split(" ", 1)[1]
    index = _index(session=session, streams_only=streams_only)
    if query in index:
        target = index[query]
        return Resolution(target.kind, text, key=target.key, command=target.command)
    ranked = _rank(query, index)
    if ranked:
        (best, best_score), *rest = ranked
        runner_up = rest[0][1] if rest else 0.0
        if best_score >= ACCEPT_SCORE and best_score - runner_up >= CLEAR_LEAD:
            return Resolution(best.kind, text, key=best.key, command=best.command, corrected_from=text)
    suggestions = [target for target, score in ranked if score >= SUGGEST_SCORE][:MAX_SUGGESTIONS]
    return Resolution(Kind.NOT_FOUND, text, suggestions=suggestions)


def _score(query: str, phrase: str, **_: object) -> float:
    """The best of: word-order-tolerant similarity, one-typo similarity (swapped letters count
    once), and being the start of a phrase."""
    scores = [fuzz.WRatio(query, phrase), 100 * DamerauLevenshtein.normalized_similarity(query, phrase)]
    if len(query) >= 3 and phrase.startswith(query):
        scores.append(PREFIX_SCORE)
    return max(scores)


def find_metric(text: str, *, session: Session) -> tuple[str | None, list[str]]:
    """A metric key for an exact key, name or alias, else up to three suggested keys.

    For imports: a typo in a file must be refused with suggestions, never guessed at.
    """
    query = normalise(text)
    index = {phrase: t for phrase, t in _index(session=session).items() if t.kind is Kind.METRIC}
    if query in index:
        return index[query].key, []
    ranked = _rank(query, index)
    bar = max(SUGGEST_SCORE, ranked[0][1] - CLEAR_LEAD) if ranked else SUGGEST_SCORE
    return None, [t.key for t, score in ranked if score >= bar][:MAX_SUGGESTIONS]


def _rank(query: str, index: dict[str, Target]) -> list[tuple[Target, float]]:
    """Targets by their best-scoring phrase, best first."""
    if not query:
        return []
    best: dict[Target, float] = {}
    for phrase, score, _ in process.extract(query, list(index), scorer=_score, limit=40):
        target = index[phrase]
        best[target] = max(best.get(target, 0.0), float(score))
    return sorted(best.items(), key=lambda item: item[1], reverse=True)
