"""Seed django-crm 1.x for crm-audit's tests: runs INSIDE the django-crm venv (Python 3.12).

Reads {"accounts": [{name, email, org, role}, …]} on stdin; creates the orgs, users and
profiles, then per org (inside that org's row-level-security context, as the app role) a small
data set with known data-quality defects, and one personal access token per account. Prints one
line ``CRM_AUDIT_RESULT {json}`` (it holds the PATs: the caller keeps that line out of logs).
"""

import datetime
import json
import sys
from decimal import Decimal

import django

django.setup()

from accounts.models import Account  # noqa: E402
from cases.models import Case  # noqa: E402
from common.models import Org, PersonalAccessToken, Profile, User  # noqa: E402
from common.rls import get_set_context_sql  # noqa: E402
from contacts.models import Contact  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from leads.models import Lead  # noqa: E402
from opportunity.models import Opportunity  # noqa: E402

TODAY = datetime.date.today()


def day(n):
    return TODAY + datetime.timedelta(days=n)


# (resource, owner: "admin"|"user", fields, defect or None). The same set is seeded in each org;
# {k} is the org key ("alpha"/"beta") so every value says which tenant it belongs to.
DATA = [
    ("contacts", "user", {"first_name": "Alice", "last_name": "Anders {K}", "email": "alice@{k}-cust.example", "phone": "+14155550101"}, None),
    ("contacts", "admin", {"first_name": "Bob", "last_name": "Brown {K}", "email": "bob@{k}-cust.example", "phone": "+14155550102"}, None),
    ("contacts", "user", {"first_name": "alice", "last_name": "anders {K}", "email": "Alice+crm@{k}-CUST.example", "phone": "+14155550199"}, "duplicate_contact"),
    ("contacts", "user", {"first_name": "Eve", "last_name": "Evans {K}", "email": "eve@{k}-cust.example", "phone": "12345"}, "bad_phone"),
    ("contacts", "admin", {"first_name": "Frank", "last_name": "Fox {K}", "email": "frank.fox@@{k}.example", "phone": "+14155550105"}, "bad_email"),
    ("accounts", "user", {"name": "{K} Acme", "email": "info@{k}-acme.example", "city": "Springfield", "country": "US"}, None),
    ("accounts", "admin", {"name": "{K} Globex", "email": "info@{k}-globex.example", "city": "Austin", "country": "US"}, None),
    ("accounts", "user", {"name": "{K} Acme Inc", "email": "info@{k}-acme.example", "city": "Springfield", "country": "US"}, "duplicate_account"),
    ("leads", "user", {"title": "{K} expansion", "first_name": "Alice", "last_name": "Anders", "email": "alice@{k}-cust.example", "status": "assigned"}, None),
    ("leads", "admin", {"title": "{K} renewal", "first_name": "Bob", "last_name": "Brown", "email": "bob@{k}-cust.example", "status": "in process"}, None),
    ("leads", "user", {"title": "{K} untitled lead", "status": "assigned"}, "missing_contact_info"),
    ("opportunities", "user", {"name": "{K} 100 seats", "stage": "QUALIFICATION", "probability": 20, "amount": Decimal("12000"), "currency": "USD", "closed_on": day(30)}, None),
    ("opportunities", "admin", {"name": "{K} rollout", "stage": "CLOSED_WON", "probability": 100, "amount": Decimal("80000"), "currency": "USD", "closed_on": day(-10)}, None),
    ("opportunities", "user", {"name": "{K} stale deal", "stage": "PROPOSAL", "probability": 60, "amount": Decimal("500"), "currency": "USD", "closed_on": day(-400)}, "open_deal_close_date_past"),
    ("cases", "user", {"name": "{K} login broken", "status": "New", "priority": "High", "case_type": "Incident"}, None),
    ("cases", "admin", {"name": "{K} outage", "status": "Closed", "priority": "Urgent", "case_type": "Problem", "closed_on": day(-1)}, None),
    ("cases", "user", {"name": "{K} closed but open-dated", "status": "Closed", "priority": "Low", "case_type": "Question", "closed_on": day(365)}, "closed_case_future_close_date"),
]
MODELS = {"contacts": Contact, "accounts": Account, "leads": Lead, "opportunities": Opportunity, "cases": Case}


def fill(value, key):
    return value.replace("{k}", key).replace("{K}", key.capitalize()) if isinstance(value, str) else value


def seed_org(org, key, profiles, out):
    """All of one org's records, inside its RLS context (set for the session, reset at the end)."""
    with connection.cursor() as cur:
        cur.execute(get_set_context_sql(), [str(org.id)])
    for res, who, fields, defect in DATA:
        prof = profiles[who]
        obj = MODELS[res].objects.create(org=org, created_by=prof.user, updated_by=prof.user,
                                         **{k: fill(v, key) for k, v in fields.items()})
        obj.assigned_to.add(prof)
        out["records"].setdefault(res, []).append({
            "id": str(obj.id), "org": org.name, "owner": f"{key}_{who}", "defect": defect,
            "label": fill(fields.get("name") or fields.get("title") or fields.get("last_name"), key)})
    for name, prof in profiles.items():
        raw, _ = PersonalAccessToken.generate(prof, "crm-audit test harness")
        out["pats"][f"{key}_{name}"] = raw
    with connection.cursor() as cur:
        cur.execute(get_set_context_sql(), [""])


def main():
    cfg = json.load(sys.stdin)
    out = {"orgs": {}, "accounts": {}, "records": {}, "pats": {}}
    by_org = {}
    with transaction.atomic():
        for a in cfg["accounts"]:
            org, _ = Org.objects.get_or_create(name=a["org"], defaults={"default_currency": "USD", "default_country": "US"})
            user = User.objects.create_user(email=a["email"])
            user.set_unusable_password()
            user.save()
            prof = Profile.objects.create(user=user, org=org, role=a["role"], has_sales_access=True,
                                          has_marketing_access=True, is_active=True)
            key, who = a["name"].split("_", 1)
            by_org.setdefault(key, (org, {}))[1][who] = prof
            out["orgs"][org.name] = str(org.id)
            out["accounts"][a["name"]] = {"email": a["email"], "role": a["role"], "org": org.name,
                                          "org_id": str(org.id), "user_id": str(user.id), "profile_id": str(prof.id)}
        for key, (org, profiles) in by_org.items():
            seed_org(org, key, profiles, out)
    connection.close()
    print("CRM_AUDIT_RESULT " + json.dumps(out))


main()
