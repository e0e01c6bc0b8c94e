"""The schema exists only through Alembic: the migrations and the models must agree."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shop.models import Base
from tests.conftest import BACKENDS, Databases


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_migrated_schema_matches_the_models(databases: Databases, backend: str) -> None:
    engine = sa.create_engine(databases.new(backend))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == [], "models and migrations disagree; write a migration:\n" + "\n".join(map(str, differences))
