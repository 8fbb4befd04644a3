"""``message:search`` on a database made by ``db.create_all()``: the models' DDL
builds the same search index as the migration (tests/e2e/test_search.py runs
the whole contract on migrated databases)."""
from __future__ import annotations

from tests.conftest import call

from .conftest import joined, public_room, sent


def test_a_database_made_from_the_models_has_the_index_kept_by_the_database(auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    room = public_room(alice, "General")
    message = sent(alice, room, "the deploy finished")
    joined(bob, room)

    ack = call(bob, "message:search", {"query": "deployed"})
    assert [r["message"]["id"] for r in ack["results"]] == [message["id"]]
    assert call(alice, "message:delete", {"id": message["id"]})["ok"]
    assert call(bob, "message:search", {"query": "deployed"})["results"] == []
