"""Fixtures shared by the django-crm test modules: a throwaway PostgreSQL and django-crm on it, per module."""

from __future__ import annotations

from typing import Iterator

import pytest

from targets.django_crm import DjangoCrmServer
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
