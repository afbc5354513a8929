"""``python -m crm_audit`` runs the command line."""

from crm_audit.cli import main

main()
