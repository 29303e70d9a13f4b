"""The settlement SQL store: one schema for SQLite and PostgreSQL, its migrations and its connections."""
