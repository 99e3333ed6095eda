from fedinf.privacy.normalize import Normalizer


def test_ascii_is_identity():
    n = Normalizer().normalize("plain text 123")
    assert n.text == "plain text 123" and n.to_original(0, 5) == (0, 5)


def test_zero_width_fullwidth_arabic_digits_and_confusables():
    text = "card ４１１１\u200b1111 ١١١١ 1111 mail jоhn@exаmple.com"  # Cyrillic о and а
    n = Normalizer().normalize(text)
    assert "41111111 1111 1111" in n.text
    assert "john@example.com" in n.text
    s = n.text.index("john@")
    start, end = n.to_original(s, s + len("john@example.com"))
    assert text[start:end] == "jоhn@exаmple.com"


def test_span_maps_over_removed_and_expanded_characters():
    text = "x\u200b\u200bﬁle ＡＢＣ"
    n = Normalizer().normalize(text)
    assert n.text == "xfile ABC"
    assert n.to_original(1, 5) == (3, 6)  # 'file' <- 'ﬁle' (the ligature is one character)
    assert text[slice(*n.to_original(6, 9))] == "ＡＢＣ"


def test_obfuscated_values_are_detected(found):
    assert ("CREDIT_CARD", "４１１１ １１１１ １１１１ １１１１") in found("card ４１１１ １１１１ １１１１ １１１１")
    ssn = "460\u200b-89-\u200b9847"
    assert ("US_SSN", ssn) in found(f"SSN {ssn}")
    assert ("EMAIL_ADDRESS", "jоhn@exаmple.com") in found("mail jоhn@exаmple.com")
    assert ("CREDIT_CARD", "٤١١١١١١١١١١١١١١١") in found("card ٤١١١١١١١١١١١١١١١")


def test_json_escapes_are_decoded_and_mapped_back(found):
    import json

    text = json.dumps({"note": "card:\n４１１１\u200b1111 1111 1111, ssn 460-89-9847"})
    got = dict((t, v) for t, v in found(text))
    assert got["CREDIT_CARD"] == "\\uff14\\uff11\\uff11\\uff11\\u200b1111 1111 1111"
    assert got["US_SSN"] == "460-89-9847"


def test_escaped_newline_does_not_glue_to_a_number(types):
    assert "CREDIT_CARD" in types('{"a": "card:\\n4111111111111111"}')
