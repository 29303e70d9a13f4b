"""Alembic environment: run migrations on the engine settlement.store.migrate passes in (online mode only)."""

from alembic import context

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(connection=connection, transactional_ddl=True)
    context.run_migrations()
