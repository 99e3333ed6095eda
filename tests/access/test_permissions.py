"""Permission matrix: each role and scope allows exactly what it should, with the expected error code."""

from __future__ import annotations

import pytest

from fedinf.access import Limits, Principal, Scopes
from fedinf.data_class import DataClass as DC
from fedinf.errors import Forbidden


def P(roles=("user",), **scopes) -> Principal:
    return Principal(key_id="k1", tenant="t", roles=frozenset(roles), scopes=Scopes(**scopes))


ROLE_MATRIX = [
    # roles, required role, allowed?
    (("admin",), "admin", True), (("admin",), "user", True), (("admin",), "auditor", True),
    (("user",), "admin", False), (("user",), "user", True), (("user",), "auditor", False),
    (("auditor",), "admin", False), (("auditor",), "user", False), (("auditor",), "auditor", True),
    (("user", "auditor"), "auditor", True), (("user", "auditor"), "admin", False),
]


@pytest.mark.parametrize(("roles", "required", "allowed"), ROLE_MATRIX)
def test_roles(roles, required, allowed) -> None:
    p = P(roles)
    assert p.has_role(required) is allowed
    if allowed:
        p.require_role(required)
    else:
        with pytest.raises(Forbidden) as ei:
            p.require_role(required)
        assert ei.value.code == "role_required" and ei.value.status_code == 403


def test_inference_needs_user_role() -> None:
    P(("user",)).check_infer()
    P(("admin",)).check_infer()
    with pytest.raises(Forbidden) as ei:
        P(("auditor",)).check_infer()
    assert ei.value.code == "role_required"


MODEL_MATRIX = [
    # models, zones, model, zone, expected code (None = allowed)
    (("*",), ("*",), "gpt-4o", "cloud", None),
    (("local-*",), ("*",), "local-llama", "onprem", None),
    (("local-*",), ("*",), "gpt-4o", "onprem", "model_not_allowed"),
    (("gpt-4o",), ("onprem",), "gpt-4o", "cloud", "zone_not_allowed"),
    (("gpt-4o",), ("onprem", "vpc"), "gpt-4o", "vpc", None),
    ((), ("*",), "anything", "onprem", "model_not_allowed"),
    (("*",), (), "anything", "onprem", "zone_not_allowed"),
    (("gpt-4o",), ("*",), "gpt-4o-mini", "cloud", "model_not_allowed"),  # exact id is not a prefix
]


@pytest.mark.parametrize(("models", "zones", "model", "zone", "code"), MODEL_MATRIX)
def test_models_and_zones(models, zones, model, zone, code) -> None:
    p = P(models=models, zones=zones)
    assert (p.may_use_model(model, zone) is None) is (code is None)
    if code is None:
        p.check_model(model, zone)
    else:
        with pytest.raises(Forbidden) as ei:
            p.check_model(model, zone)
        assert ei.value.code == code
        assert "k1" in ei.value.message


@pytest.mark.parametrize(("routes", "route", "ok"), [
    (("*",), "auto", True), (("auto",), "auto", True), (("auto",), "extract", False), ((), "auto", False)])
def test_routes(routes, route, ok) -> None:
    p = P(routes=routes)
    assert (p.may_use_route(route) is None) is ok
    if not ok:
        with pytest.raises(Forbidden) as ei:
            p.check_route(route)
        assert ei.value.code == "route_not_allowed"


@pytest.mark.parametrize(("tasks", "task", "ok"), [
    (("*",), "invoice", True), (("invoice*",), "invoice-v2", True), (("invoice",), "cv", False)])
def test_tasks(tasks, task, ok) -> None:
    p = P(tasks=tasks)
    assert (p.may_use_task(task) is None) is ok
    if not ok:
        with pytest.raises(Forbidden) as ei:
            p.check_task(task)
        assert ei.value.code == "task_not_allowed"


@pytest.mark.parametrize("max_class", list(DC))
@pytest.mark.parametrize("sent", list(DC))
def test_max_class(max_class, sent) -> None:
    p = P(max_class=max_class)
    assert p.max_class is max_class
    allowed = sent <= max_class
    assert (p.may_send_class(sent) is None) is allowed
    if not allowed:
        with pytest.raises(Forbidden) as ei:
            p.check_class(sent)
        assert ei.value.code == "data_class_not_allowed"


@pytest.mark.parametrize("may_lower", [False, True])
@pytest.mark.parametrize("detected", list(DC))
@pytest.mark.parametrize("declared", list(DC))
def test_lowering(may_lower, detected, declared) -> None:
    p = P(may_lower_class=may_lower)
    allowed = declared >= detected or may_lower  # raising is always allowed
    assert (p.may_lower(detected, declared) is None) is allowed
    if not allowed:
        with pytest.raises(Forbidden) as ei:
            p.check_lower(detected, declared)
        assert ei.value.code == "lowering_not_allowed"


def test_scope_and_limit_roundtrip() -> None:
    s = Scopes(models=("a",), zones=("z",), routes=(), tasks=("t",), max_class=DC.INTERNAL, may_lower_class=True)
    assert Scopes.from_dict(s.to_dict()) == s
    lim = Limits(requests_per_minute=5, tokens_per_minute=100, token_budget=1000, budget_period="day")
    assert Limits.from_dict(lim.to_dict()) == lim
    with pytest.raises(ValueError):
        Limits(requests_per_minute=0)
    with pytest.raises(ValueError):
        Limits(budget_period="year")  # type: ignore[arg-type]
