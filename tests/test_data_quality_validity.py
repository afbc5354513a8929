"""Data-quality validity rules come from email-validator and phonenumbers (no DNS, no network).

The cases are the ones where the former hand-written patterns were wrong, each way round.
"""

from __future__ import annotations

import pytest

from crm_audit_plugins.data_quality import DataQualityOptions
from crm_audit_plugins.data_quality.checks import (
    count_defects,
    valid_email,
    valid_phone,
)


@pytest.mark.parametrize("address, ok", [
    ("alice.anders@acme.example", True),
    (" Alice.Anders+crm@ACME.example ", True),   # normalized first
    ("müller@acme.example", True),
    ("a..b@acme.example", False),                # the old pattern let these three through
    (".a@acme.example", False),
    ("a@acme.example.", False),
    ("a@acme", False),
    ("first last@acme.example", False),
    ("frank.fox@@example", False),
])
def test_email_validity(address: str, ok: bool) -> None:
    assert valid_email(address) is ok


@pytest.mark.parametrize("number, region, ok", [
    ("+1 212-555-0142", None, True),
    ("+44 20 7946 0123", None, True),
    ("+1 212 555 1234 ext. 12", None, True),     # an extension is part of a valid number (the old pattern refused it)
    ("212.555.1234", "US", True),                # dots are separators (refused by the old pattern)
    ("(212) 555-0142", "US", True),
    ("(212) 555-0142", None, False),             # no country code and no region: cannot be read
    ("+1 555 0100", None, False),                # seven digits: too short for North America (the old pattern took it)
    ("+1 211-555-1234", None, False),            # 211 is no area code
    ("+999 30 1234567", None, False),            # no such country code
    ("+49 123 4567 8901 2345 678", None, False),
    ("call back after 5pm", "US", False),
    ("n/a", None, False),
])
def test_phone_validity(number: str, region: str | None, ok: bool) -> None:
    assert valid_phone(number, region) is ok


def test_phone_region_option_changes_the_count() -> None:
    recs = [{"first_name": "A", "last_name": "B", "email": "a@x.io", "phone": "(212) 555-0142"}]
    strict = count_defects(recs, DataQualityOptions(references=[], updated_field=None), {})
    local = count_defects(recs, DataQualityOptions(references=[], updated_field=None, phone_region="US"), {})
    assert strict.defects["malformed_phone"] == 1 and strict.ratios()["validity"] == (0, 1)
    assert local.defects.get("malformed_phone", 0) == 0 and local.ratios()["validity"] == (1, 1)
