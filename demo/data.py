"""Deterministic synthetic CRM data with known, counted data-quality defects.

``generate(seed, now)`` returns every record row (explicit ids) for both tenants. The same
seed always yields the same rows, with timestamps relative to ``now``. Contacts carry
seeded defects whose exact counts are published in ``SEEDED_DEFECTS`` so a data-quality
probe can be checked against ground truth.

Defect definitions (per tenant, over its contacts; ``normalize(e) = e.strip().lower()``):

- ``duplicate``: contacts whose normalized e-mail equals the normalized e-mail of another
  contact of the tenant; counted as "extra" rows, i.e. sum over groups of (size - 1).
  Blank e-mails never count.
- ``missing_email``: e-mail is null or the empty string.
- ``malformed_email``: e-mail present but its normalized form is not a valid address for
  ``email-validator`` (syntax only, no DNS).
- ``malformed_phone``: phone is null or not a valid number for ``phonenumbers``
  (libphonenumber; every seeded number carries its +country code; seeded contacts always
  have a phone string).
- ``stale``: ``updated_at`` older than ``STALE_DAYS`` (365) days.
- ``dangling_account``: ``account_id`` is not null and is not the id of an account of
  the same tenant.

The defect sets are disjoint (a defective row has exactly one defect), and every other
contact is clean: unique valid e-mail, valid phone, existing account of its tenant,
updated within the last 300 days (so the counts hold for weeks after the seed time).
"""

from __future__ import annotations

import random
import unicodedata
from datetime import datetime, timedelta
from typing import Any

from crm_audit_demo.config import DEMO_USERS, TENANTS
from crm_audit_demo.timefmt import iso, parse_iso

STALE_DAYS = 365

DEFECT_KINDS: tuple[str, ...] = (
    "duplicate",
    "missing_email",
    "malformed_email",
    "malformed_phone",
    "stale",
    "dangling_account",
)

SEEDED_DEFECTS: dict[str, dict[str, int]] = {
    "acme": {
        "duplicate": 40,
        "missing_email": 30,
        "malformed_email": 25,
        "malformed_phone": 35,
        "stale": 60,
        "dangling_account": 20,
    },
    "globex": {
        "duplicate": 8,
        "missing_email": 6,
        "malformed_email": 5,
        "malformed_phone": 7,
        "stale": 12,
        "dangling_account": 4,
    },
}

SIZES: dict[str, dict[str, int]] = {
    "acme": {"contacts": 2000, "accounts": 300, "leads": 600, "opportunities": 300, "cases": 600},
    "globex": {"contacts": 400, "accounts": 60, "leads": 120, "opportunities": 60, "cases": 120},
}

Row = dict[str, Any]

_FIRST = (
    "Anna", "Ben", "Carla", "David", "Elena", "Felix", "Grace", "Hugo", "Ines", "Jonas",
    "Katrin", "Liam", "Maria", "Noah", "Olivia", "Paul", "Quinn", "Rosa", "Samuel", "Tara",
    "Uma", "Victor", "Wendy", "Xavier", "Yara", "Zoe", "Amir", "Björn", "Chloé", "Dmitri",
    "Emma", "Farid", "Giulia", "Hannah", "Ivan", "Julia", "Kenji", "Lea", "Mateo", "Nora",
    "Oskar", "Priya", "Rafael", "Sofia", "Tomás", "Ulrich", "Vera", "William", "Yusuf", "Zainab",
    "Aiko", "Bruno", "Clara", "Diego", "Eva", "Frank", "Greta", "Henrik", "Isla", "José",
)
_LAST = (
    "Smith", "Müller", "Garcia", "Rossi", "Nguyen", "Johnson", "Schmidt", "Martin", "Kowalski",
    "Brown", "Dubois", "Silva", "Jensen", "Novak", "Tanaka", "Williams", "Fischer", "Lopez",
    "Bianchi", "Kim", "Taylor", "Weber", "Moreau", "Costa", "Nielsen", "Horvat", "Sato", "Davies",
    "Becker", "Martinez", "Ricci", "Park", "Wilson", "Wagner", "Laurent", "Pereira", "Larsen",
    "Kovac", "Suzuki", "Evans", "Hoffmann", "Fernandez", "Greco", "Choi", "Thomas", "Schulz",
    "Bernard", "Oliveira", "Hansen", "Popescu", "Ito", "Roberts", "Koch", "Sanchez", "Marino",
    "Lee", "Walker", "Richter", "Petit", "Santos", "Berg", "Ionescu", "Yamamoto", "Wright",
    "Klein", "Gomez", "Conti", "Han", "Hall", "Wolf", "Roux", "Almeida", "Lund", "Kaya", "Mori",
    "Green", "Schröder", "Ruiz", "Gallo", "Baker",
)
_STEMS_A = (
    "Blue", "North", "Silver", "Bright", "Summit", "Pioneer", "Atlas", "Harbor", "Cedar",
    "Quantum", "Vertex", "Nimbus", "Orion", "Granite", "Maple", "Falcon", "Evergreen",
    "Redwood", "Copper", "Lumen", "Iron", "Coastal", "Alpine", "Solar", "Crescent",
)
_STEMS_B = (
    "Systems", "Logistics", "Foods", "Health", "Analytics", "Energy", "Retail", "Labs",
    "Partners", "Manufacturing", "Media", "Finance", "Dynamics", "Works", "Solutions", "Robotics",
)
_SUFFIXES = ("Inc", "Ltd", "GmbH", "LLC", "SA", "AG", "BV", "Oy")
#: real North American area codes, so a "valid" seeded phone is valid for libphonenumber too
_AREA_CODES = (201, 202, 212, 213, 305, 312, 404, 415, 512, 617, 646, 702, 713, 718, 808, 917)
_INDUSTRIES = (
    "Software", "Manufacturing", "Retail", "Healthcare", "Finance", "Logistics", "Energy",
    "Education", "Media", "Hospitality", "Telecom", "Public sector",
)
_PRODUCTS = ("Enterprise licence", "Renewal", "Onboarding package", "Support upgrade", "Expansion", "Pilot")
_LEAD_SOURCES = ("web", "referral", "event", "cold_call", "partner", "ads")
_LEAD_TITLES = (
    "Demo request from {company}",
    "Pricing inquiry - {company}",
    "Webinar attendee: {person}",
    "Trial signup {company}",
    "Referral from {company}",
    "Contact form: {person}",
)
_CASE_SUBJECTS = {
    "question": ("How do I export my invoices?", "Question about user seats", "Where can I change my billing address?",
                 "Can we integrate with our ERP?", "How to reset two-factor authentication?"),
    "problem": ("Sync job fails every night", "Login page times out", "Reports show wrong totals",
                "Import stops at row 5000", "E-mail notifications not delivered"),
    "complaint": ("Invoice charged twice", "Support did not call back", "Outage during our quarter close",
                  "Unhappy with onboarding", "Promised feature still missing"),
}
_OWNER_WEIGHTS = {"admin": 1, "manager": 3, "sales": 8}


def owners_by_tenant() -> dict[str, list[tuple[int, int]]]:
    """(user id, weight) of the users who own seeded records, per tenant (no readonly/lockout)."""
    result: dict[str, list[tuple[int, int]]] = {t: [] for t in TENANTS}
    for user_id, user in enumerate(DEMO_USERS, start=1):
        if user.role in _OWNER_WEIGHTS and not user.username.startswith(("lockout@", "disposable@")):
            result[user.tenant].append((user_id, _OWNER_WEIGHTS[user.role]))
    return result


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


class _TenantGenerator:
    """Generates one tenant's rows into shared tables, drawing ids from shared counters."""

    def __init__(self, tenant: str, seed: int, now: datetime, tables: dict[str, list[Row]],
                 next_id: dict[str, int], owners: list[tuple[int, int]]) -> None:
        self.rng = random.Random(f"crm-audit-demo:{seed}:{tenant}")
        self.tenant = tenant
        self.now = now
        self.tables = tables
        self.next_id = next_id
        self.owner_ids = [o for o, _ in owners]
        self.owner_weights = [w for _, w in owners]
        self.sizes = SIZES[tenant]
        self.emails: set[str] = set()

    # -- helpers ---------------------------------------------------------------------------
    def _id(self, table: str) -> int:
        value = self.next_id[table]
        self.next_id[table] = value + 1
        return value

    def _owner(self) -> int:
        return self.rng.choices(self.owner_ids, self.owner_weights)[0]

    def _ago(self, min_days: float, max_days: float) -> datetime:
        seconds = self.rng.uniform(min_days * 86400, max_days * 86400)
        return (self.now - timedelta(seconds=seconds)).replace(microsecond=0)

    def _base(self, table: str, created: datetime, updated: datetime, tags: list[str] | None = None) -> Row:
        return {
            "id": self._id(table),
            "tenant_id": self.tenant,
            "owner_id": self._owner(),
            "created_at": iso(created),
            "updated_at": iso(max(created, updated)),
            "tags": tags or [],
        }

    def _unique_email(self, first: str, last: str, domain: str) -> str:
        local = f"{_ascii(first)}.{_ascii(last)}"
        candidate, n = f"{local}@{domain}", 1
        while candidate in self.emails:
            n += 1
            candidate = f"{local}{n}@{domain}"
        self.emails.add(candidate)
        return candidate

    def _valid_phone(self) -> str:
        r = self.rng
        d = lambda k: "".join(str(r.randint(0, 9)) for _ in range(k))  # noqa: E731
        return r.choice((
            lambda: f"+1 {r.choice(_AREA_CODES)}-555-{d(4)}",
            lambda: f"+44 20 7946 {d(4)}",
            lambda: f"+1 ({r.choice(_AREA_CODES)}) 555-{d(4)}",
            lambda: f"+49 30 {d(7)}",
            lambda: f"+33 1 {d(2)} {d(2)} {d(2)} {d(2)}",
        ))()

    def _bad_phone(self) -> str:
        r = self.rng
        d = lambda k: "".join(str(r.randint(0, 9)) for _ in range(k))  # noqa: E731
        return r.choice((
            lambda: f"{d(3)}-{d(2)}",
            lambda: f"+1 1{d(3)[1:]}.555.{d(4)}",          # no North American area code starts with 1
            lambda: f"+1 {d(3)} 555 {d(4)}{d(2)}",          # two digits too many
            lambda: "call back after 5pm",
            lambda: "n/a",
            lambda: f"+49 {d(3)} {d(4)} {d(4)} {d(4)} {d(3)}",
            lambda: f"+999 30 {d(7)}",                      # no country has the code 999
        ))()

    # -- tables ----------------------------------------------------------------------------
    def accounts(self) -> list[Row]:
        stems = [f"{a} {b}" for a in _STEMS_A for b in _STEMS_B]
        self.rng.shuffle(stems)
        rows = []
        for stem in stems[: self.sizes["accounts"]]:
            created = self._ago(30, 1100)
            churned = self.rng.random() < 0.12
            churned_at = None
            if churned:
                churned_at = iso(created + (self.now - created) * self.rng.uniform(0.3, 0.98))
            row = self._base("accounts", created, self._ago(0, (self.now - created).days or 1))
            row.update(
                name=f"{stem} {self.rng.choice(_SUFFIXES)}",
                industry=self.rng.choice(_INDUSTRIES),
                website=f"https://www.{stem.replace(' ', '').lower()}.example",
                churned=churned,
                churned_at=churned_at,
                _domain=f"{stem.replace(' ', '').lower()}.example",
            )
            rows.append(row)
        return rows

    def contacts(self, accounts: list[Row]) -> list[Row]:
        defects = SEEDED_DEFECTS[self.tenant]
        total = self.sizes["contacts"]
        kinds = [k for k in DEFECT_KINDS if k != "duplicate" for _ in range(defects[k])]
        kinds += ["clean"] * (total - defects["duplicate"] - len(kinds))
        self.rng.shuffle(kinds)
        rows = [self._contact(kind, accounts) for kind in kinds]
        clean = [i for i, kind in enumerate(kinds) if kind == "clean"]
        originals = self.rng.sample(clean, defects["duplicate"])
        # Insert each duplicate at a random position after its original (ascending positions
        # keep earlier insert positions valid).
        for pos in sorted(originals, reverse=True):
            dup = self._duplicate_of(rows[pos])
            rows.insert(self.rng.randint(pos + 1, len(rows)), dup)
        for row in rows:
            row["id"] = self._id("contacts")
        return rows

    def _contact(self, kind: str, accounts: list[Row]) -> Row:
        first, last = self.rng.choice(_FIRST), self.rng.choice(_LAST)
        account = self.rng.choice(accounts)
        if kind == "stale":
            updated = self._ago(STALE_DAYS + 35, 1500)
        else:
            updated = self._ago(1 / 24, 300)
        created = updated - timedelta(days=self.rng.randint(0, 700))
        tags = ["newsletter"] if self.rng.random() < 0.2 else []
        if self.rng.random() < 0.05:
            tags.append("vip")
        row = {
            "id": 0,
            "tenant_id": self.tenant,
            "owner_id": self._owner(),
            "created_at": iso(created),
            "updated_at": iso(updated),
            "tags": tags,
            "first_name": first,
            "last_name": last,
            "email": self._unique_email(first, last, account["_domain"]),
            "phone": self._valid_phone(),
            "account_id": account["id"],
        }
        if kind == "missing_email":
            row["email"] = self.rng.choice((None, ""))
        elif kind == "malformed_email":
            local, domain = row["email"].split("@")
            row["email"] = self.rng.choice((
                f"{local}@",
                f"{local}.{domain}",
                f"{local}@@{domain}",
                f"{local}@{domain.split('.')[0]}",
                f"{_ascii(first)} {local}@{domain}",
                f"{local}(at){domain}",
            ))
        elif kind == "malformed_phone":
            row["phone"] = self._bad_phone()
        elif kind == "dangling_account":
            row["account_id"] = 900_000 + self.rng.randint(0, 99_999)
        return row

    def _duplicate_of(self, original: Row) -> Row:
        email = original["email"]
        variant = self.rng.choice((
            email,
            email.upper(),
            email.capitalize(),
            f" {email}",
            f"{email} ",
        ))
        updated = self._ago(1 / 24, 300)
        return {
            **original,
            "owner_id": self._owner(),
            "created_at": iso(updated - timedelta(days=self.rng.randint(0, 200))),
            "updated_at": iso(updated),
            "tags": [],
            "email": variant,
            "phone": self._valid_phone(),
        }

    def leads_and_opportunities(self, accounts: list[Row]) -> tuple[list[Row], list[Row]]:
        n_leads, n_opps = self.sizes["leads"], self.sizes["opportunities"]
        n_converted = n_leads // 5
        statuses = ["converted"] * n_converted + self.rng.choices(
            ("new", "qualified", "lost"), (35, 25, 20), k=n_leads - n_converted
        )
        self.rng.shuffle(statuses)
        leads = []
        for status in statuses:
            created = self._ago(5, 700)
            first, last = self.rng.choice(_FIRST), self.rng.choice(_LAST)
            account = self.rng.choice(accounts)
            row = self._base("leads", created, created + (self.now - created) * self.rng.random())
            row.update(
                title=self.rng.choice(_LEAD_TITLES).format(company=account["name"], person=f"{first} {last}"),
                email=f"{_ascii(first)}.{_ascii(last)}@{account['_domain']}",
                status=status,
                source=self.rng.choice(_LEAD_SOURCES),
                converted_opportunity_id=None,
            )
            leads.append(row)
        converted = [lead for lead in leads if lead["status"] == "converted"]
        slots: list[Row | None] = [*converted, *([None] * (n_opps - len(converted)))]
        self.rng.shuffle(slots)  # converted-lead opportunities spread over the id range
        opps = []
        for lead in slots:
            if lead is not None:
                lead_created = parse_iso(lead["created_at"])
                created = lead_created + (self.now - lead_created) * self.rng.uniform(0.05, 0.5)
            else:
                created = self._ago(1, 700)
            account = self.rng.choice(accounts)
            stage = self.rng.choices(
                ("prospecting", "qualification", "proposal", "won", "lost"), (20, 20, 20, 22, 18)
            )[0]
            row = self._base("opportunities", created, created + (self.now - created) * self.rng.random())
            row.update(
                name=f"{account['name']} - {self.rng.choice(_PRODUCTS)}",
                account_id=account["id"],
                lead_id=lead["id"] if lead else None,
                stage=stage,
                amount=float(round(self.rng.lognormvariate(9.8, 0.9), -2) or 500.0),
            )
            opps.append(row)
            if lead is not None:
                lead["converted_opportunity_id"] = row["id"]
        return leads, opps

    def cases(self, contacts: list[Row]) -> list[Row]:
        pool = [c for c in contacts if c["account_id"] is not None and c["account_id"] < 900_000]
        pool = self.rng.sample(pool, min(len(pool), self.sizes["cases"] // 2))
        drafts = []
        for _ in range(self.sizes["cases"]):
            contact = self.rng.choice(pool)
            drafts.append((self._ago(0.02, 365), contact))
        drafts.sort(key=lambda d: d[0])
        last_case: dict[int, tuple[int, datetime]] = {}
        rows = []
        for created, contact in drafts:
            case_type = self.rng.choices(("question", "problem", "complaint"), (50, 35, 15))[0]
            priority = self.rng.choices(("low", "normal", "high", "urgent"), (20, 50, 22, 8))[0]
            repeat_of = None
            previous = last_case.get(contact["id"])
            if previous and created - previous[1] < timedelta(days=45) and self.rng.random() < 0.6:
                repeat_of = previous[0]
                case_type = self.rng.choice(("problem", "complaint"))
            speed = {"urgent": 0.25, "high": 0.6, "normal": 1.0, "low": 1.8}[priority]
            first_response = created + timedelta(hours=self.rng.lognormvariate(1.1, 1.0) * speed)
            resolved = first_response + timedelta(hours=self.rng.lognormvariate(3.4, 1.1) * speed)
            backlog = self.now - created < timedelta(days=14) and self.rng.random() < 0.3
            if first_response > self.now or backlog:
                status, first_response, resolved = "new", None, None
            elif resolved > self.now or self.rng.random() < 0.07:
                status, resolved = "open", None
            elif self.now - resolved > timedelta(days=7) and self.rng.random() < 0.85:
                status = "closed"
            else:
                status = "resolved"
            updated = max(t for t in (created, first_response, resolved) if t is not None)
            row = self._base("cases", created, updated)
            row.update(
                subject=self.rng.choice(_CASE_SUBJECTS[case_type]),
                contact_id=contact["id"],
                account_id=contact["account_id"],
                status=status,
                priority=priority,
                type=case_type,
                first_response_at=iso(first_response) if first_response else None,
                resolved_at=iso(resolved) if resolved else None,
                repeat_of=repeat_of,
            )
            rows.append(row)
            last_case[contact["id"]] = (row["id"], created)
        return rows

    def run(self) -> None:
        accounts = self.accounts()
        contacts = self.contacts(accounts)
        leads, opps = self.leads_and_opportunities(accounts)
        cases = self.cases(contacts)
        for row in accounts:
            row.pop("_domain")
        for table, rows in (("accounts", accounts), ("contacts", contacts), ("leads", leads),
                            ("opportunities", opps), ("cases", cases)):
            self.tables[table].extend(rows)


def generate(seed: int, now: datetime) -> dict[str, list[Row]]:
    """All seeded record rows, per table, with explicit ids (tenant acme first, then globex)."""
    tables: dict[str, list[Row]] = {t: [] for t in ("accounts", "contacts", "leads", "opportunities", "cases")}
    next_id = {t: 1 for t in tables}
    owners = owners_by_tenant()
    for tenant in TENANTS:
        _TenantGenerator(tenant, seed, now, tables, next_id, owners[tenant]).run()
    return tables
