"""What people type after /pcp, and what they get."""

from __future__ import annotations

import pytest

from scorecard.lookup import Kind, normalise, resolve


@pytest.mark.parametrize(
    ("text", "kind", "key"),
    [
        ("knife-crime", Kind.METRIC, "knife-crime"),
        ("Knife Crime", Kind.METRIC, "knife-crime"),
        ("ksi", Kind.METRIC, "ksi"),
        ("999 calls", Kind.METRIC, "calls-answered"),
        ("999", Kind.METRIC, "calls-answered"),
        ("asb", Kind.METRIC, "asb"),
        ("dvpo", Kind.METRIC, "dvpo"),
        ("Reduce numbers of KSI's on roads in W Yorkshire", Kind.METRIC, "ksi"),
        ("priority 3", Kind.AREA, "p3"),
        ("P2", Kind.AREA, "p2"),
        ("safer places", Kind.AREA, "p3"),
        ("women and girls", Kind.AREA, "women-and-girls"),
        ("Safety of Women & Girls", Kind.AREA, "women-and-girls"),
        ("casework", Kind.AREA, "casework"),
        ("funding vrp", Kind.FUNDING_STREAM, "vrp"),
        ("funding community safety fund", Kind.FUNDING_STREAM, "community-safety-fund"),
        ("funding", Kind.FUNDING, None),
        ("scorecard", Kind.SCORECARD, None),
        ("help", Kind.HELP, None),
        ("import", Kind.IMPORT_HELP, None),
        ("", Kind.HELP, None),
        ("   ", Kind.HELP, None),
    ],
)
def test_names_keys_and_aliases_resolve_exactly(text, kind, key, session):
    resolution = resolve(text, session=session)
    assert (resolution.kind, resolution.key, resolution.corrected_from) == (kind, key, None)


@pytest.mark.parametrize(
    ("typo", "key"),
    [
        ("knife crme", "knife-crime"),
        ("kinfe crime", "knife-crime"),
        ("knif", "knife-crime"),
        ("stalkng", "stalking-orders"),
    ],
)
def test_a_clear_typo_is_forgiven_and_said_so(typo, key, session):
    resolution = resolve(typo, session=session)
    assert resolution.key == key
    assert resolution.corrected_from == typo


@pytest.mark.parametrize(
    ("vague", "expected"),
    [
        ("domestic abuse", {"da-satisfaction", "da-outcomes", "repeat-da-victims"}),
        ("missing", {"repeat-missing-children", "repeat-missing-adults"}),
        ("officers", {"ethnic-minority-officers", "female-officers", "recruitment"}),
    ],
)
def test_an_ambiguous_query_gets_the_closest_suggestions(vague, expected, session):
    resolution = resolve(vague, session=session)
    assert resolution.kind is Kind.NOT_FOUND
    assert expected <= {s.key for s in resolution.suggestions}
    assert len(resolution.suggestions) <= 3


def test_nonsense_gets_no_made_up_suggestions(session):
    resolution = resolve("xyzzy", session=session)
    assert resolution.kind is Kind.NOT_FOUND and resolution.suggestions == []


def test_funding_prefix_only_searches_streams(session):
    resolution = resolve("funding knife", session=session)
    assert resolution.kind is Kind.NOT_FOUND
    assert all(s.kind is Kind.FUNDING_STREAM for s in resolution.suggestions)


def test_suggestions_carry_the_command_to_type(session):
    (suggestion, *_) = resolve("funding vpr", session=session).suggestions
    assert (suggestion.key, suggestion.command) == ("vrp", "funding vrp")


def test_normalise():
    assert normalise("  Knife-Crime! ") == "knife crime"
    assert normalise("L&D") == "l and d"
    assert normalise("KSI’s") == "ksis"
