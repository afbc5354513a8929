"""Ready profiles and hierarchy variants shipped with crm-audit."""
