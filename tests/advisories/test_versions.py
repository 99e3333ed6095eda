"""Version phrases to OSV ranges, and range membership."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedinf.advisories.versions import (
    Interval, VersionKey, affected_by, find_mentions, fixed_versions, intervals_from, intervals_of, ranges,
)


def spans(text):
    return [(i.introduced, i.fixed, i.last_affected) for i in intervals_from(find_mentions(text))]


@pytest.mark.parametrize("text,expected", [
    ("django-registration prior to 3.1.2, the base view", [("0", "3.1.2", None)]),
    ("A flaw was found in ansible 2.8.0 before 2.8.4.", [("2.8.0", "2.8.4", None)]),
    ("rtslib-fb through 2.1.72 has weak permissions", [("0", None, "2.1.72")]),
    ("Django 1.11.x before 1.11.29, 2.2.x before 2.2.11, and 3.0.x before 3.0.4 allows",
     [("1.11.0", "1.11.29", None), ("2.2.0", "2.2.11", None), ("3.0.0", "3.0.4", None)]),
    ("The fix will be included in TensorFlow 2.8.0. We will also cherrypick this commit on TensorFlow 2.7.1, "
     "TensorFlow 2.6.3, and TensorFlow 2.5.3, as these are also affected",
     [("0", "2.5.3", None), ("2.6.0", "2.6.3", None), ("2.7.0", "2.7.1", None)]),
    ("In TensorFlow before 1.15.2 and 2.0.1, converting", [("0", "1.15.2", None), ("2.0.0", "2.0.1", None)]),
    ("aubio v0.4.0 to v0.4.8 has a NULL pointer dereference", [("0.4.0", None, "0.4.8")]),
    ("affects versions >= 1.0.0, < 1.4.2 of foo", [("1.0.0", "1.4.2", None)]),
    ("Mitigation: upgrade to Apache Airflow 1.9.0 or above.", [("0", "1.9.0", None)]),
    ("A patch has been applied in version `0.5.2`; upgrade to `0.5.2`.", [("0", "0.5.2", None)]),
    ("in github.com/gin-gonic/gin before v1.6.0 allows", [("0", "1.6.0", None)]),
    ("Nothing here about versions, only CVE-2021-1234 and the year 2021.", []),
])
def test_phrases(text, expected):
    assert spans(text) == expected


def test_version_order_pep440_and_fallback():
    assert VersionKey("1.11") == VersionKey("1.11.0")
    assert VersionKey("2.0.0rc1") < VersionKey("2.0.0")
    assert VersionKey("v1.2.10") > VersionKey("1.2.9")
    assert VersionKey("1.22.0-0") < VersionKey("1.22.1")  # SemVer pre-release: not PEP 440


def test_membership_and_fixed():
    aff = {"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2"},
                                                       {"introduced": "2.0"}, {"last_affected": "2.1"}]},
                      {"type": "GIT", "repo": "r", "events": [{"introduced": "0"}, {"fixed": "a" * 40}]}],
           "versions": ["3.0"]}
    assert affected_by("1.1.9", aff) and not affected_by("1.2", aff)
    assert affected_by("2.1", aff) and not affected_by("2.1.1", aff)
    assert affected_by("3.0", aff)
    assert fixed_versions(aff) == ["1.2"]


def test_ranges_never_mix_fixed_and_last_affected():
    out = ranges([Interval("0", fixed="1.0"), Interval("2.0", last_affected="2.3")], range_type="ECOSYSTEM")
    assert [list(e) for r in out for e in r["events"]] == [["introduced"], ["fixed"], ["introduced"],
                                                          ["last_affected"]]
    assert len(out) == 2


_V = st.builds(lambda a, b, c: f"{a}.{b}.{c}", st.integers(0, 30), st.integers(0, 30), st.integers(0, 30))


@settings(max_examples=150, deadline=None)
@given(st.lists(_V, min_size=1, max_size=4, unique=True), _V)
def test_round_trip_and_membership_agree(fixes, probe):
    """Events written from any fixes read back to intervals that give the same answer for any version."""
    ivs = intervals_from(find_mentions("fixed in " + ", ".join(fixes) + "."))
    evs = [e for r in ranges(ivs, range_type="ECOSYSTEM") for e in r["events"]]
    back = intervals_of(evs)
    assert [iv.contains(probe) for iv in back] == [iv.contains(probe) for iv in ivs]
    assert evs[0] == {"introduced": "0"}
