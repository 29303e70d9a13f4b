"""Shared pytest fixtures live here."""
