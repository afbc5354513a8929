"""The ready profile for the embedded demo CRM, filled in from a running DemoServer."""

from __future__ import annotations

import os
from importlib.resources import files
from typing import Any

from crm_audit.core.profile import Profile, parse_profile


def demo_profile(server: Any, name: str | None = None) -> Profile:
    """Load ``crm_audit_profiles/<name>`` with the server's URL, CA and credentials as ${ENV}.

    ``name`` defaults to the profile of the server's protocol (``server.profile_name``).
    """
    name = name or getattr(server, "profile_name", "demo.yaml")
    env = dict(os.environ)
    env.update(server.env)
    env["DEMO_BASE_URL"] = server.base_url
    env["DEMO_CA_BUNDLE"] = str(server.ca_path or "")
    text = (files("crm_audit_profiles") / name).read_text(encoding="utf-8")
    if not server.ca_path:  # a plain-HTTP demo: no CA file to name (the loader checks that files exist)
        text = "\n".join(line for line in text.splitlines() if "${DEMO_CA_BUNDLE}" not in line) + "\n"
    return parse_profile(text, source=f"profiles/{name}", env=env)
