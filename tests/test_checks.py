"""The document's own inconsistencies are found, not copied."""

from __future__ import annotations

from decimal import Decimal

from scorecard.checks import find_discrepancies


def test_every_disagreement_in_the_document_is_reported(session):
    found = {(d.subject, d.field): d for d in find_discrepancies(session=session)}
    assert set(found) == {
        ("ethnic-minority-officers", "change"),
        ("female-officers", "change"),
        ("vru-attendees", "change (Bracketed figure)"),
        ("ksi", "period"),
        ("funding 2023/24", "total awarded"),
    }
    ethnic = found[("ethnic-minority-officers", "change")]
    assert (ethnic.stated, ethnic.computed) == ("1.3%", Decimal("1.5"))
    assert found[("female-officers", "change")].computed == Decimal("4.2")
    assert found[("vru-attendees", "change (Bracketed figure)")].computed == Decimal(-107)
    assert found[("funding 2023/24", "total awarded")].computed == 16966014
    assert found[("funding 2023/24", "total awarded")].stated == "16996014"
