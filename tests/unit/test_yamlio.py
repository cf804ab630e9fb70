"""User text placed in YAML templates stays one string, whatever it contains."""

from __future__ import annotations

import string

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from generator.errors import ManifestError
from generator.yamlio import dump_documents, load_documents, quote

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)
HOSTILE = ["a: b", "x\n- y", "'\"", "#comment", "{{ x }}", "!!python/object:os.system",
           "&a *a", "- item", "null", "true", "012", "1e3", "---\nkind: Secret", "\t\r\n",
           "\x85\u2028\u2029", "\ufeff", "\x00", "😀"]


@given(TEXT)
def test_quoted_text_is_read_back_exactly(text: str) -> None:
    assert yaml.safe_load(f"key: {quote(text)}\nother: 1\n") == {"key": text, "other": 1}


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_read_back_exactly(text: str) -> None:
    assert load_documents(f"- {quote(text)}\n", "t") == [[text]]


def test_collections_and_scalars_keep_their_types() -> None:
    value = {"a": [1, 2.5, True, None, "x: y"], "b": {"c": "#"}}
    assert yaml.safe_load(quote(value)) == value


def test_lone_surrogate_is_refused() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        quote("\udc80")


def test_duplicate_keys_are_an_error_with_the_line() -> None:
    with pytest.raises(ManifestError, match=r"f.yaml:3: .*duplicate key 'a'"):
        load_documents("a: 1\nb: 2\na: 3\n", "f.yaml")


def test_dates_stay_strings() -> None:
    assert load_documents("d: 2024-01-02\n", "f") == [{"d": "2024-01-02"}]


def test_a_plain_equals_sign_is_a_string_as_kubectl_writes_it() -> None:
    """kubectl (Go YAML) writes an env value "=" unquoted; YAML 1.1's `=` tag has no
    constructor, and reading such a manifest failed (a kustomize property test found it)."""
    text = "env:\n- name: SEP\n  value: =\n"
    assert load_documents(text, "f") == [{"env": [{"name": "SEP", "value": "="}]}]


@given(st.dictionaries(st.text(string.ascii_letters, min_size=1), TEXT, max_size=5))
def test_dump_round_trips_and_is_stable(data: dict[str, str]) -> None:
    text = dump_documents([data])
    assert yaml.safe_load(text) == data
    assert dump_documents([yaml.safe_load(text)]) == text


# Strings with edges a pod's command, args and env values have (a `|` block's script starts
# with a newline when it begins on the line after the quote), at the depths a pod puts them:
# items of a sequence and values of a mapping inside one, as `pattern run` writes them too.
EDGE_TEXT = ["\n", "\n\n", " ", "  ", "\t", " \n ", "\nfoo", "\necho hi\n", "foo\n\n", "  a\n  b\n",
             "\n  a\n", "a \nb", "#x", "x #y", ": ", "a: b\nc", "é\n中", "\tx\n", "x\t\ny", "\r\n",
             "- a\n- b", "|2-\n x", "'", '"\n"', "\ufeff\nx", "a\u2028b", "😀\n 😀", "\n\t\n"]
EDGE_PIECES = [" ", "\n", "\t", "\r", "#", ": ", "- ", "'", '"', "\\", "a", "é", "中", "😀", "|",
               ">", "\u2028", "\x85", "---", "..."]


def _pod(text: str) -> dict[str, object]:
    return {"spec": {"containers": [{"name": "c", "command": ["sh", "-c", text], "args": [text],
                                     "env": [{"name": "X", "value": text}]}]},
            "data": {"key": text}}


def _round_trips(text: str) -> None:
    document = _pod(text)
    written = dump_documents([document])
    assert yaml.safe_load(written) == document
    assert load_documents(written, "t") == [document]
    assert dump_documents([yaml.safe_load(written)]) == written


@pytest.mark.parametrize("text", EDGE_TEXT + HOSTILE)
def test_edge_text_in_a_pod_is_written_and_read_back_exactly(text: str) -> None:
    _round_trips(text)


@given(st.lists(st.sampled_from(EDGE_PIECES) | st.characters(blacklist_categories=("Cs",)),
                max_size=16).map("".join))
def test_any_text_in_a_pod_is_written_and_read_back_exactly(text: str) -> None:
    _round_trips(text)
