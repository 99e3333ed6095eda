"""decide(): the pure policy step on its own - eligibility (clearance, license, access, capabilities), ordering by
strategy, fail-closed refusals and purity. No I/O: a Network built from a config of fake models."""

from __future__ import annotations

import pytest

from fedinf.access import Principal, Scopes
from fedinf.config import parse_config
from fedinf.data_class import DataClass
from fedinf.errors import CapabilityError, Forbidden, NotFound, PolicyViolation
from fedinf.network import Network
from fedinf.routing.decide import Needs, decide, evaluate

CONFIG = """
zones:
  onprem: {kind: onprem, clearance: restricted}
  vpc: {kind: vpc, clearance: confidential}
  cloud: {kind: cloud, clearance: internal}
  shield: {kind: cloud, clearance: public, pseudonymized_clearance: confidential}
models:
  - {id: big-cloud, backend: fake, zone: cloud, license: proprietary-api, cost: {input_per_mtok: 5, output_per_mtok: 15}}
  - {id: small-onprem, backend: fake, zone: onprem, license: Apache-2.0, capabilities: [grammar]}
  - {id: mid-vpc, backend: fake, zone: vpc, license: MIT, capabilities: [tools],
     cost: {input_per_mtok: 1, output_per_mtok: 2}}
  - {id: masked, backend: fake, zone: shield, license: MIT}
  - {id: noncommercial, backend: fake, zone: onprem, license: CC-BY-NC-4.0}
routes:
  auto: [big-cloud, mid-vpc, small-onprem]
  cheap: {models: [big-cloud, mid-vpc, small-onprem], strategy: cost}
  fast: {models: [big-cloud, mid-vpc, small-onprem], strategy: latency}
  cascade: {models: [big-cloud, mid-vpc, small-onprem], strategy: cascade}

  all: [big-cloud, mid-vpc, small-onprem, masked, noncommercial]
"""


@pytest.fixture(scope="module")
def network() -> Network:
    return Network.build(parse_config(CONFIG, source="test.yaml"))


def ids(decision) -> list[str]:  # type: ignore[no-untyped-def]
    return [t.model_id for t in decision.targets]


def test_clearance_decides_the_eligible_set(network: Network) -> None:
    assert ids(decide("auto", network=network, data_class=DataClass.PUBLIC)) == ["big-cloud", "mid-vpc",
                                                                                  "small-onprem"]
    assert ids(decide("auto", network=network, data_class=DataClass.CONFIDENTIAL)) == ["mid-vpc", "small-onprem"]
    d = decide("auto", network=network, data_class=DataClass.RESTRICTED)
    assert ids(d) == ["small-onprem"]
    assert {(e.model_id, e.reason) for e in d.excluded} == {("big-cloud", "clearance"), ("mid-vpc", "clearance")}
    assert d.data_class is DataClass.RESTRICTED and d.route == "auto" and d.strategy == "priority"


def test_a_model_named_directly_is_a_route_of_one(network: Network) -> None:
    d = decide("mid-vpc", network=network, data_class=DataClass.INTERNAL)
    assert ids(d) == ["mid-vpc"] and d.route is None
    with pytest.raises(PolicyViolation) as err:
        decide("big-cloud", network=network, data_class=DataClass.RESTRICTED)
    assert err.value.code == "policy_violation"
    assert err.value.details["decision"]["excluded"][0]["reason"] == "clearance"
    with pytest.raises(NotFound):
        decide("no-such-model", network=network, data_class=DataClass.PUBLIC)


def test_license_and_access_exclusions_are_reported_with_reasons(network: Network) -> None:
    d = evaluate("all", network=network, data_class=DataClass.PUBLIC)
    reasons = {e.model_id: e.reason for e in d.excluded}
    assert reasons == {"noncommercial": "license"}
    onprem_only = Principal(key_id="k1", tenant="t", scopes=Scopes(zones=("onprem",)))
    d = evaluate("auto", network=network, data_class=DataClass.PUBLIC, principal=onprem_only)
    assert ids(d) == ["small-onprem"]
    assert {e.model_id: e.reason for e in d.excluded} == {"big-cloud": "access", "mid-vpc": "access"}
    assert all("k1" in e.detail for e in d.excluded)  # the reason names the key's scope, never content


def test_a_class_above_the_keys_maximum_is_forbidden_before_routing(network: Network) -> None:
    low = Principal(key_id="k2", tenant="t", scopes=Scopes(max_class=DataClass.INTERNAL))
    with pytest.raises(Forbidden) as err:
        decide("auto", network=network, data_class=DataClass.CONFIDENTIAL, principal=low)
    assert err.value.code == "data_class_not_allowed"


def test_capabilities_exclude_and_only_capabilities_give_a_capability_error(network: Network) -> None:
    d = decide("auto", network=network, data_class=DataClass.PUBLIC, needs=Needs(tools=True))
    assert ids(d) == ["mid-vpc"]
    assert {e.model_id: e.reason for e in d.excluded} == {"big-cloud": "capability", "small-onprem": "capability"}
    with pytest.raises(CapabilityError):
        decide("big-cloud", network=network, data_class=DataClass.PUBLIC, needs=Needs(grammar=True))
    # policy and capability both exclude: the refusal is the policy one (fail closed, the stronger reason)
    with pytest.raises(PolicyViolation):
        decide("auto", network=network, data_class=DataClass.RESTRICTED, needs=Needs(tools=True))


def test_strategies_order_only_the_eligible_set(network: Network) -> None:
    assert ids(decide("cheap", network=network, data_class=DataClass.PUBLIC)) == ["small-onprem", "mid-vpc",
                                                                                   "big-cloud"]
    latency = {"big-cloud": 40.0, "mid-vpc": 90.0, "small-onprem": 10.0}
    assert ids(decide("fast", network=network, data_class=DataClass.PUBLIC, latency_ms=latency)) == [
        "small-onprem", "big-cloud", "mid-vpc"]
    assert ids(decide("cascade", network=network, data_class=DataClass.PUBLIC)) == ["small-onprem", "mid-vpc",
                                                                                     "big-cloud"]
    # ordering never re-admits what policy excluded
    assert ids(decide("cheap", network=network, data_class=DataClass.CONFIDENTIAL)) == ["small-onprem", "mid-vpc"]


def test_pseudonymized_clearance_marks_the_target(network: Network) -> None:
    d = decide("masked", network=network, data_class=DataClass.CONFIDENTIAL)
    assert [(t.model_id, t.pseudonymize) for t in d.targets] == [("masked", True)]
    plain = decide("masked", network=network, data_class=DataClass.PUBLIC)
    assert [(t.model_id, t.pseudonymize) for t in plain.targets] == [("masked", False)]
    with pytest.raises(PolicyViolation):
        decide("masked", network=network, data_class=DataClass.RESTRICTED)


def test_decide_is_pure(network: Network) -> None:
    args = dict(network=network, data_class=DataClass.INTERNAL, needs=Needs(streaming=True),
                latency_ms={"big-cloud": 5.0})
    first = decide("fast", **args)  # type: ignore[arg-type]
    assert all(decide("fast", **args) == first for _ in range(20))  # type: ignore[arg-type]
    assert first.to_dict()["eligible"][0] == {"model": "big-cloud", "zone": "cloud", "pseudonymize": False}
