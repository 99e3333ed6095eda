import pickle

import pytest

from fedinf.privacy import Pseudonymizer


def test_round_trip_and_consistency(clf):
    texts = ["Mail anna@example.com or call +44 20 7946 0958.", "Again: anna@example.com, card 4111 1111 1111 1111",
             "card 4111111111111111 again"]
    p = Pseudonymizer(clf)
    out = p.pseudonymize(texts)
    assert out[0] == "Mail <EMAIL_ADDRESS_1> or call <PHONE_NUMBER_1>."
    assert out[1] == "Again: <EMAIL_ADDRESS_1>, card <CREDIT_CARD_1>"
    assert out[2] == "card <CREDIT_CARD_1> again"  # same number, other formatting -> same placeholder
    assert all("anna" not in o and "4111" not in o for o in out)
    assert [p.restore(o) for o in out[:2]] == texts[:2]
    assert "anna@example.com" in p.restore("Reply sent to <EMAIL_ADDRESS_1>.")


def test_uses_given_entities_and_type_filter(clf):
    texts = ["anna@example.com from 10.0.0.1"]
    c = clf.classify(texts)
    p = Pseudonymizer(clf, types={"EMAIL_ADDRESS"})
    assert p.pseudonymize(texts, c.entities) == ["<EMAIL_ADDRESS_1> from 10.0.0.1"]


def test_existing_placeholders_are_not_reused(clf):
    p = Pseudonymizer(clf)
    out = p.pseudonymize(["literal <EMAIL_ADDRESS_1> and real bob@example.com"])
    assert out == ["literal <EMAIL_ADDRESS_1> and real <EMAIL_ADDRESS_2>"]
    assert p.restore(out[0]) == "literal <EMAIL_ADDRESS_1> and real bob@example.com"


def test_mapping_is_never_serialised_or_shown(clf):
    p = Pseudonymizer(clf)
    p.pseudonymize(["bob@example.com"])
    assert "bob" not in repr(p) and len(p) == 1
    with pytest.raises(TypeError):
        pickle.dumps(p)


@pytest.mark.parametrize("chunks", [
    ["Hello <EMAIL_", "ADDRESS_1>, ok"],
    ["Hello <", "EMAIL_ADDRESS_1", ">", ", ok"],
    ["Hello <EMAIL_ADDRESS_1>, ok"],
    list("Hello <EMAIL_ADDRESS_1>, ok"),
])
def test_stream_restorer_split_placeholders(clf, chunks):
    p = Pseudonymizer(clf)
    p.pseudonymize(["bob@example.com"])
    r = p.stream()
    out = "".join(r.feed(c) for c in chunks) + r.flush()
    assert out == "Hello bob@example.com, ok"


def test_stream_restorer_releases_non_placeholders(clf):
    p = Pseudonymizer(clf)
    p.pseudonymize(["bob@example.com"])
    r = p.stream()
    assert r.feed("a < b and x<y") == "a < b and x<y"
    assert r.feed("<html>") == "<html>"
    assert r.feed("tail <EMA") == "tail "
    assert r.flush() == "<EMA"


def test_stream_restorer_every_split_point(clf):
    p = Pseudonymizer(clf)
    p.pseudonymize(["bob@example.com and +44 20 7946 0958"])
    answer = "To <EMAIL_ADDRESS_1> (<PHONE_NUMBER_1>)<EMAIL_ADDRESS_1>."
    expected = p.restore(answer)
    for i in range(len(answer)):
        for j in range(i, len(answer)):
            r = p.stream()
            out = r.feed(answer[:i]) + r.feed(answer[i:j]) + r.feed(answer[j:]) + r.flush()
            assert out == expected


def test_fresh_pseudonymizer_is_truthy(clf):
    p = Pseudonymizer(clf)
    assert p and len(p) == 0
