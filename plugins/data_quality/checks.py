"""Defect counting over sampled records; pure functions, so the rules are easy to check.

Validity is judged by well-kept libraries, not by hand-written patterns: an e-mail address
by ``email-validator`` (syntax only: no DNS, so a check never contacts anything beyond the
target), a phone number by ``phonenumbers`` (Google's libphonenumber: a real number plan of a
real country, its length and prefixes; an extension is allowed). A number written without
``+country code`` is read in ``phone_region`` and is malformed when no region is given.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict

from crm_audit.core.crm_data import blank, parse_time


class ReferenceCheck(BaseModel):
    """A field that must hold the id of an existing record of another resource."""

    model_config = ConfigDict(extra="forbid")
    field: str
    resource: str


class _Opts(Protocol):
    required_fields: list[str]
    email_field: str | None
    phone_field: str | None
    phone_region: str | None
    name_fields: list[str]
    date_fields: list[str]
    duplicate_keys: list[str]
    references: list[ReferenceCheck]
    updated_field: str | None
    timeliness_days: int


@dataclass
class Counts:
    """Defect counts over ``records`` sampled records; ratios are (good, checked) pairs."""

    records: int = 0
    defects: dict[str, int] = field(default_factory=dict)
    references_checked: int = 0
    dated: int = 0
    duplicates_by_key: dict[str, int] = field(default_factory=dict)
    invalid_records: int = 0
    incomplete_records: int = 0
    duplicate_records: int = 0

    def ratios(self) -> dict[str, tuple[int, int]]:
        return {
            "completeness": (self.records - self.incomplete_records, self.records),
            "validity": (self.records - self.invalid_records, self.records),
            "uniqueness": (self.records - self.duplicate_records, self.records),
            "consistency": (self.references_checked - self.defects.get("dangling_reference", 0), self.references_checked),
            "timeliness": (self.dated - self.defects.get("stale", 0), self.dated),
        }


def normalize_email(value: Any) -> str:
    return str(value).strip().lower() if not blank(value) else ""


def valid_email(value: Any) -> bool:
    """True when the normalized address is a valid e-mail address (syntax and domain form; no DNS)."""
    try:
        validate_email(normalize_email(value), check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def valid_phone(value: Any, region: str | None = None) -> bool:
    """True when ``value`` is a valid number of a real numbering plan (``region`` for numbers without +code)."""
    try:
        number = phonenumbers.parse(str(value), region)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_valid_number(number))


def normalize_phone(value: Any) -> str:
    digits = re.sub(r"\D", "", str(value or ""))
    return digits[-10:] if len(digits) >= 7 else ""


def count_defects(records: list[dict[str, Any]], opts: _Opts, known_ids: dict[str, set[str]],
                  now: dt.datetime | None = None) -> Counts:
    """Count every defect kind; a record can have several, and each ratio counts records."""
    now = now or dt.datetime.now(dt.UTC)
    c = Counts(records=len(records))
    d: Counter[str] = Counter()
    keys: dict[str, Counter[str]] = {"email": Counter(), "phone": Counter(), "name": Counter()}
    dup_flags = [False] * len(records)
    for i, r in enumerate(records):
        missing = [f for f in opts.required_fields if blank(r.get(f))]
        if missing:
            c.incomplete_records += 1
            for f in missing:
                d[f"missing_{f}"] += 1
        invalid = False
        if opts.email_field and not blank(r.get(opts.email_field)) and not valid_email(r.get(opts.email_field)):
            d["malformed_email"] += 1
            invalid = True
        if (opts.phone_field and not blank(r.get(opts.phone_field))
                and not valid_phone(r.get(opts.phone_field), opts.phone_region)):
            d["malformed_phone"] += 1
            invalid = True
        for f in opts.date_fields:
            if not blank(r.get(f)) and parse_time(r.get(f)) is None:
                d["malformed_date"] += 1
                invalid = True
        c.invalid_records += invalid
        for key, value in (("email", normalize_email(r.get(opts.email_field)) if opts.email_field else ""),
                           ("phone", normalize_phone(r.get(opts.phone_field)) if opts.phone_field else ""),
                           ("name", " ".join(str(r.get(f) or "").strip().lower() for f in opts.name_fields).strip())):
            if value:
                keys[key][value] += 1
                if keys[key][value] > 1 and key in opts.duplicate_keys:
                    dup_flags[i] = True
        for ref in opts.references:
            ref_value = r.get(ref.field)
            if blank(ref_value) or ref.resource not in known_ids:
                continue
            c.references_checked += 1
            if str(ref_value) not in known_ids[ref.resource]:
                d["dangling_reference"] += 1
        if opts.updated_field:
            updated = parse_time(r.get(opts.updated_field))
            if updated is not None:
                c.dated += 1
                if (now - updated).days > opts.timeliness_days:
                    d["stale"] += 1
    c.duplicate_records = sum(dup_flags)
    d["duplicate"] = c.duplicate_records
    c.duplicates_by_key = {k: sum(n - 1 for n in cnt.values() if n > 1) for k, cnt in keys.items()}
    c.defects = dict(d)
    return c
