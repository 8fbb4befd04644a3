"""The search service's pure parts: the caller's words, FTS5 quoting, snippets."""
from __future__ import annotations

import pytest

from app.errors import Invalid
from app.services.search import ELLIPSIS, MARK_END, MARK_START, fts5_query, snippet_parts, words_of


def marked(body: str, word: str) -> str:
    return body.replace(word, f"{MARK_START}{word}{MARK_END}")


@pytest.mark.parametrize("query, words", [
    ("deploy", ["deploy"]),
    ('"deploy', ["deploy"]),
    ("body:deploy* -now", ["body", "deploy", "now"]),
    ("NEAR(a b)", ["NEAR", "a", "b"]),
    ("snake_case déjà-vu 42", ["snake", "case", "déjà", "vu", "42"]),
])
def test_words_are_runs_of_letters_and_digits(app, query, words):
    with app.app_context():
        assert words_of(query) == words


@pytest.mark.parametrize("query, message", [
    ("", "search for at least one word"),
    ('" * : ()', "search for at least one word"),
    ("x" * 201, "a search is at most 200 characters"),
    (" ".join(["w"] * 17), "a search is at most 16 words"),
])
def test_a_query_without_words_or_over_the_limits_is_invalid(app, query, message):
    with app.app_context(), pytest.raises(Invalid) as refused:
        words_of(query)
    assert str(refused.value) == message and refused.value.field == "query"


def test_each_word_is_one_fts5_string_with_its_quotes_doubled():
    assert fts5_query(["deploy", 'say"hi', "NEAR"]) == '"deploy" "say""hi" "NEAR"'


def test_a_short_body_is_its_own_snippet_with_the_match_marked():
    body = "We <b>deployed</b> it"
    assert snippet_parts(marked(body, "deployed"), body) == [
        {"text": "We <b>", "match": False}, {"text": "deployed", "match": True},
        {"text": "</b> it", "match": False}]


def test_a_long_body_is_cut_at_spaces_around_the_first_match_with_ellipses():
    body = " ".join(f"w{i}" for i in range(100)) + " target " + " ".join(f"t{i}" for i in range(100))
    parts = snippet_parts(marked(body, "target"), body)
    assert parts[0] == {"text": ELLIPSIS, "match": False}
    assert parts[-1] == {"text": ELLIPSIS, "match": False}
    assert [p["text"] for p in parts if p["match"]] == ["target"]
    inner = "".join(p["text"] for p in parts[1:-1])
    assert inner in body and len(inner) <= 200
    assert inner.startswith("w") and not inner.startswith(" ") and not inner.endswith(" ")
    assert inner.index("target") <= 61


def test_a_body_holding_the_marks_itself_gets_no_highlight():
    body = f"odd {MARK_START} text with a word"
    assert snippet_parts(marked(body, "word"), body) == [{"text": body, "match": False}]
