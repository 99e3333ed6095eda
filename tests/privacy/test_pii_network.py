import pytest


@pytest.mark.parametrize("text,value", [
    ("client_ip = 98.85.59.159", "98.85.59.159"),
    ("keep getting address 6e40:4041:c617:e898:c11:40d2:c669:2eb4", "6e40:4041:c617:e898:c11:40d2:c669:2eb4"),
    ("server at 10.0.0.1.", "10.0.0.1"),
    ("ipv6 2001:db8::1 works", "2001:db8::1"),
])
def test_ip_positive(found, text, value):
    assert ("IP_ADDRESS", value) in found(text)


@pytest.mark.parametrize("text", [
    "version 1.2.3.4 released", "v1.2.3.4", "address 999.1.1.1", "1.2.3.4.5 is not an ip", "time 12:30:45",
    "std::vector<int>", "uuid 123e4567-e89b-12d3-a456-426614174000",
])
def test_ip_negative(types, text):
    assert "IP_ADDRESS" not in types(text)
