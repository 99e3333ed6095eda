import pytest

from fedinf.config import Governance
from fedinf.data_class import DataClass
from fedinf.errors import ConfigError, Forbidden
from fedinf.privacy import Classifier, apply_declared


def test_public_text_is_default_class(clf):
    c = clf.classify(["What is the capital of France?", "Explain recursion."])
    assert c.data_class == DataClass.PUBLIC and c.entities == ()


@pytest.mark.parametrize("text,expected", [
    ("server 10.0.0.1 is down", DataClass.INTERNAL),
    ("email me at a.b@example.com", DataClass.CONFIDENTIAL),
    ("card 4111 1111 1111 1111", DataClass.RESTRICTED),
    ("key AKIAIOSFODNN7EXAMPLE", DataClass.RESTRICTED),
    ("Patient MRN: 00123456", DataClass.RESTRICTED),
])
def test_entity_classes(clf, text, expected):
    assert clf.classify([text]).data_class == expected


def test_entities_have_source_and_original_spans(clf):
    texts = ["nothing here", "write to x.y@example.com", "SSN 460-89-9847"]
    c = clf.classify(texts)
    assert [(e.source, e.type) for e in c.entities] == [(1, "EMAIL_ADDRESS"), (2, "US_SSN")]
    e = c.entities[1]
    assert texts[e.source][e.start:e.end] == "460-89-9847"


def test_summary_never_contains_values(clf):
    c = clf.classify(["mail x.y@example.com, SSN 460-89-9847"])
    s = c.summary()
    assert s["entities"] == {"EMAIL_ADDRESS": 1, "US_SSN": 1} and s["data_class"] == "restricted"
    assert "example" not in repr(s) and "9847" not in repr(s)


def test_combination_raises_diagnosis_with_identity(clf):
    assert clf.classify(["diagnosis code E11.9"]).data_class == DataClass.CONFIDENTIAL
    assert clf.classify(["diagnosis code E11.9 for a.b@example.com"]).data_class == DataClass.RESTRICTED


def test_entity_class_override_and_default_class():
    g = Governance(entity_classes={"IP_ADDRESS": "restricted"}, default_class="internal")
    clf = Classifier.from_config(g)
    assert clf.classify(["host 10.0.0.1"]).data_class == DataClass.RESTRICTED
    assert clf.classify(["hello"]).data_class == DataClass.INTERNAL


def test_custom_patterns():
    g = Governance(custom_patterns=[
        {"name": "employee_id", "pattern": r"EMP-\d{6}", "class": "restricted"},
        {"name": "PROJECT", "pattern": r"project [a-z]+", "context": ["codename"], "context_required": True,
         "ignore_case": True},
    ])
    clf = Classifier.from_config(g)
    c = clf.classify(["ticket for EMP-123456", "codename Project Falcon"])
    assert c.counts() == {"EMPLOYEE_ID": 1, "PROJECT": 1}
    assert c.data_class == DataClass.RESTRICTED
    assert clf.classify(["our project alpha"]).counts() == {}


@pytest.mark.parametrize("entry", [
    {"name": "X", "pattern": "("}, {"pattern": "x"}, {"name": "X", "pattern": "x", "colour": 1},
    {"name": "X", "pattern": "x", "class": "secret"},
])
def test_custom_pattern_errors(entry):
    with pytest.raises(ConfigError):
        Classifier.from_config(Governance(custom_patterns=[entry]))


def test_apply_declared_raise_equal_lower(clf):
    c = clf.classify(["mail x.y@example.com"])
    up = apply_declared(c, DataClass.RESTRICTED, may_lower=False)
    assert (up.data_class, up.detected_class, up.adjustment) == (DataClass.RESTRICTED, DataClass.CONFIDENTIAL, "raised")
    same = apply_declared(c, "confidential", may_lower=False)
    assert same.data_class == DataClass.CONFIDENTIAL and same.adjustment is None and same.declared == c.data_class
    with pytest.raises(Forbidden) as exc:
        apply_declared(c, DataClass.PUBLIC, may_lower=False)
    assert exc.value.code == "lowering_not_permitted" and exc.value.status_code == 403
    assert "example" not in exc.value.message
    low = apply_declared(c, DataClass.PUBLIC, may_lower=True)
    assert (low.data_class, low.adjustment, low.summary()["adjustment"]) == (DataClass.PUBLIC, "lowered", "lowered")
    assert apply_declared(c, None, may_lower=False) is c


@pytest.mark.parametrize("text", [
    "Kubernetes schedules pods onto nodes. When a Deployment is updated, the ReplicaSet controller creates new Pods. "
    "Amazon Web Services and Google Cloud both offer managed clusters. The Apache Software Foundation maintains Kafka.",
    "class Endpoint(BaseModel):\n    name: str | None = None\n    api_key = os.environ['OPENAI_API_KEY']\n"
    "    password = settings.DB_PASSWORD\n",
    "Install xllamacpp==2026.10.11549 and run the OpenAI-compatible server; SQLite and PyPI are supported.",
    "A route is a 3-method interface; see the Fallback section of the SDK docs.",
])
def test_technical_text_is_not_confidential(clf, text):
    """Over-classification keeps ordinary prompts away from cloud zones: product and code names are not people."""
    assert clf.classify([text]).data_class <= DataClass.INTERNAL, clf.classify([text]).summary()


def test_weak_entities_are_reported_but_do_not_raise_the_class(clf):
    c = clf.classify(["The report mentions Zorblax twice."])  # one unknown capitalised word, no cue
    assert c.counts() == {"PERSON": 1} and c.data_class == DataClass.PUBLIC
    assert clf.classify(["The report mentions Zorblax Quintrell twice."]).data_class == DataClass.CONFIDENTIAL
