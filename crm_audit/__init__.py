"""crm-audit: audit a running CRM over its API and prove, with evidence, how good it is."""

__version__ = "0.1.0"
