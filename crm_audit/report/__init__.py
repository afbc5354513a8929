"""Built-in reporters: each module is a plugin that renders an AuditResult to one format.

Reporters only read an :class:`~crm_audit.core.model.AuditResult`; they never contact the target,
so any report can be re-rendered later from ``result.json`` alone.
"""
