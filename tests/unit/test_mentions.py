"""Which words of a body can mention someone (``mentions.names_in``)."""
from __future__ import annotations

import pytest

from app.services.mentions import names_in


@pytest.mark.parametrize("body, names", [
    ("hi @alice", {"alice"}),
    ("@Alice and @BOB", {"alice", "bob"}),
    ("thanks @alice.", {"alice.", "alice"}),
    ("@al.ex-9_ there", {"al.ex-9_", "al.ex-9"}),
    ("(@alice)", {"alice"}),
    ("@room, listen", {"room"}),
])
def test_a_name_after_an_at_sign_may_mention_someone(body, names):
    assert names_in(body) == names


@pytest.mark.parametrize("body", [
    "mail bob@example.com",     # inside an address
    "a@@alice",                 # inside a word
    "just @ a sign",
    "@a is too short",
    "nothing here",
])
def test_addresses_and_bare_signs_mention_no_one(body):
    assert names_in(body) == set()


def test_a_word_longer_than_any_username_mentions_no_one():
    assert names_in("@" + "x" * 33) == set()
    assert names_in("@" + "x" * 32) == {"x" * 32}


def test_only_the_first_distinct_words_up_to_the_limit_are_read():
    body = "@ann @bob @ann @cy. @dee"
    assert names_in(body, 3) == {"ann", "bob", "cy.", "cy"}
