"""Fixtures for the hardening tests: the suite's app, with settings a test can tighten."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app import create_app
from app.extensions import db
from app.models import AuditEntry
from tests.conftest import _reset_process_state, in_db


@pytest.fixture
def app_config() -> dict:
    """Overrides of the testing settings; a module redefines this to tighten limits."""
    return {}


@pytest.fixture
def app(tmp_path, monkeypatch, app_config):
    monkeypatch.setenv("PARLEY_ENV", "testing")
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'test.sqlite3'}",
                      **app_config})
    with app.app_context():
        db.create_all()
    _reset_process_state()
    yield app
    _reset_process_state()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def audit_rows(app) -> list[tuple]:
    with app.app_context():
        try:
            return [tuple(row) for row in db.session.execute(
                select(AuditEntry.actor, AuditEntry.action, AuditEntry.target)
                .order_by(AuditEntry.id)).all()]
        finally:
            db.session.remove()

