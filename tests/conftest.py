"""Fixtures shared by the django-crm test modules: a throwaway PostgreSQL and django-crm on it, per module."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from targets.django_crm import DjangoCrmServer
from targets.django_crm_1x import DjangoCrm1xServer, find_python312
from targets.postgres import PostgresServer, require_postgres


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL cluster for the module (fails instead of skipping in CI)."""
    require_postgres()
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="module")
def crm(pg: PostgresServer) -> Iterator[DjangoCrmServer]:
    """django-crm 0.9.0 with a random SECRET_KEY, seeded users and records."""
    with DjangoCrmServer(pg) as server:
        yield server


@pytest.fixture(scope="module")
def crm1x(pg: PostgresServer) -> Iterator[DjangoCrm1xServer]:
    """django-crm 1.35 (two orgs, seeded, a PAT per account); needs Python 3.12: fails in CI without it."""
    try:
        find_python312()
    except RuntimeError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    with DjangoCrm1xServer(pg) as server:
        yield server
