"""Alembic migrations of the control-plane store (run by `suan.control.store.migrate`)."""
