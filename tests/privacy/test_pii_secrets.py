import pytest

GH = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
OPENAI = "sk-proj-" + "Ab3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gH3jK5mN7p"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0."
       "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")


@pytest.mark.parametrize("text,etype,value", [
    ("aws key AKIAIOSFODNN7EXAMPLE here", "AWS_ACCESS_KEY", "AKIAIOSFODNN7EXAMPLE"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "AWS_SECRET_KEY",
     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    (f"token {GH}", "GITHUB_TOKEN", GH),
    (f"OPENAI_API_KEY={OPENAI}", "OPENAI_API_KEY", OPENAI),
    ("sk-ant-api03-" + "x" * 20 + "Y9" * 10, "ANTHROPIC_API_KEY", "sk-ant-api03-" + "x" * 20 + "Y9" * 10),
    ("slack xoxb-123456789012-abcdefABCDEF1234", "SLACK_TOKEN", "xoxb-123456789012-abcdefABCDEF1234"),
    ("AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q", "GOOGLE_API_KEY", "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"),
    ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "STRIPE_KEY", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    (f"Authorization: Bearer {JWT}", "JWT", JWT),
    ("postgres://admin:S3cr3tPw@db.internal:5432/app", "PASSWORD", "S3cr3tPw"),
    ("password: hunter2hunter2", "PASSWORD", "hunter2hunter2"),
])
def test_secret_positive(found, text, etype, value):
    assert (etype, value) in found(text)


def test_private_key_block(found):
    block = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1234\nabcd\n-----END RSA PRIVATE KEY-----"
    assert ("PRIVATE_KEY", block) in found(f"here:\n{block}\nthanks")


@pytest.mark.parametrize("text", [
    "the sk-learn package", "use ghp_short tokens", "AKIA is a prefix", "eyJ alone", "password: changeme",
    "see https://example.com/path", "the uuid 123e4567-e89b-12d3-a456-426614174000",
])
def test_secret_negative(clf, text):
    from fedinf.privacy.classes import SECRETS
    assert not {e.type for e in clf.detect([text])} & set(SECRETS)
