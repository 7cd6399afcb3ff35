"""Schema fuzzing: schemathesis drives every operation of ``/openapi.json`` on a running ``dsagent serve``.

Each operation gets ``FUZZ_EXAMPLES`` generated requests, valid and invalid by the schema; every
response must be a non-5xx whose status, content type and body the document declares, and the server's
log holds no traceback at the end. Requests are
aimed at a real session (a random id only ever reaches the 404; hostile ids are test_names.py's), and
operations that end or reconfigure a session get a throwaway one, so chat keeps a working model.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from served import KEY, scaled, session

from dsagent_ext.handlers.openapi import OPERATIONS

FUZZ_EXAMPLES = scaled(12, 100)  # for every operation, the kernel-bound ones (reset, delete, archive) too
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
DISPOSABLE = {("delete", "/api/sessions/{session_id}"), ("post", "/api/sessions/{session_id}/archive"),
              ("put", "/api/sessions/{session_id}")}
# the document is fetched from the server; the table it is built from names the tests
OPERATION_IDS = [(method, path) for path, ops in OPERATIONS.items() for method in ops]


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


@pytest.fixture(scope="module")
def chat_session(server):
    with server.client() as http:
        return session(http, name="fuzzed", hitl_mode="none")


@pytest.mark.timeout(scaled(120, 1200))
@pytest.mark.parametrize(("method", "path"), OPERATION_IDS, ids=[f"{m.upper()} {p}" for m, p in OPERATION_IDS])
def test_operation(method, path, api_schema, chat_session, server, http):
    operation = api_schema[path][method.upper()]
    fixed = {"session_id": chat_session} if "{session_id}" in path else None
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed),
        operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=fixed),
    )
    sent, created = [], []

    @given(case=cases)
    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def fuzz(case):
        if (method, path) in DISPOSABLE:
            case.path_parameters["session_id"] = session(http)
            created.append(case.path_parameters["session_id"])
        case.headers = {**(case.headers or {}), "X-API-Key": KEY}  # wrong keys are test_auth_coverage.py's
        response = case.call(base_url=server.url, timeout=60)
        sent.append(response.status_code)
        if (method, path) == ("post", "/api/sessions") and response.status_code == 201:
            created.append(response.json()["id"])
        case.validate_response(response, checks=CHECKS)

    try:
        fuzz()
    finally:
        for sid in created:  # their kernels would weigh on the rest of the run
            http.delete(f"/api/sessions/{sid}")
    print(f"\n{method.upper()} {path}: {len(sent)} requests, statuses {sorted(set(sent))}")
    assert sent and all(code < 500 for code in sent)


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p in OPERATION_IDS if OPERATIONS[p][m].body is not None])
def test_body_that_is_not_utf8(method, path, chat_session, http):
    """What the fuzzing found first: a JSON body that is not UTF-8 was a 500; it is a 422 with a JSON detail."""
    r = http.request(method.upper(), path.replace("{session_id}", chat_session), content=b'{"name": "\xfb\xba"}',
                     headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["type"] == "json_invalid"


def test_server_log_has_no_traceback(server):
    """Run last: a fault can be logged without reaching a response (a background kernel boot, a
    kernel dying as it starts), and a 500 logs one too."""
    found = server.tracebacks()  # a kernel that lost a port race as it started is started again: not a fault
    assert not found, found[0]
