"""Shared schemathesis fuzzing for the per-service fuzz tests (`tests/*/test_*_fuzz.py`).

Every operation in a service's own OpenAPI is fuzzed with schema-valid (positive) and schema-invalid
(negative) requests, called in-process through schemathesis's ASGI integration, and every response
is checked: no 5xx, a documented status code, content type and headers, a body that matches the
documented schema, invalid requests refused. Derandomized, so every run sends the same requests.

(`schemathesis.pytest.from_fixture` would do the looping, but schemathesis 4.32.5 reads a pytest
node attribute that pytest 9.2 no longer has; `APIOperation.as_strategy` + Hypothesis is public API.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis import GenerationMode, checks

MAX_EXAMPLES = 100
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]

# Not `positive_data_acceptance`: a schema-valid request can still be refused with a 422 by rules that
# the OpenAPI does not express (unknown answer ids, exactly one of `question` / `questions`).
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]


Prepare = Callable[[schemathesis.Case], None]


def satisfy_unwritten_rules(ids: list[str]) -> Prepare:
    """Make a generated valid request meet the rules its OpenAPI does not state, so it gets past them
    to the model instead of stopping at a 422: answer ids are real ones (`candidates` of a rank
    request, `ids` of an answers request), and a retrieve request has exactly one of `question` and
    `questions`."""

    def prepare(case: schemathesis.Case) -> None:
        body: Any = case.body
        if not isinstance(body, dict):
            return
        for i, candidate in enumerate(body.get("candidates", [])[: len(ids)]):
            candidate["id"] = ids[i]
        if isinstance(body.get("ids"), list):
            body["ids"] = [ids[i % len(ids)] for i in range(len(body["ids"]))]
        if case.operation.path == "/v1/retrieve":
            if body.get("question") is not None:
                body.pop("questions", None)
            elif body.get("questions") is not None:
                body.pop("question", None)
            else:
                body.pop("questions", None)
                body["question"] = "Why is the sky blue?"

    return prepare


def fuzz_operation(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    prepare: Prepare | None = None,
    max_examples: int = MAX_EXAMPLES,
) -> None:
    """Send `max_examples` generated requests to one operation and check every response.

    `prepare` may adjust each valid (positive) request before it is sent; invalid ones go as generated.

    Raises:
        a schemathesis `FailureGroup` (an `AssertionError`): a check failed; the message says which,
        with a curl line that replays the request.
    """

    @hypothesis.settings(
        max_examples=max_examples,
        derandomize=True,  # the same examples on every run (and no example database)
        deadline=None,  # model calls vary in time; this is not a latency test
        suppress_health_check=[hypothesis.HealthCheck.too_slow, hypothesis.HealthCheck.data_too_large],
        print_blob=False,
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case) -> None:
        if prepare is not None and mode is GenerationMode.POSITIVE:
            prepare(case)
        case.call_and_validate(checks=CHECKS)

    check()


def fuzz_schema(
    schema: schemathesis.BaseSchema, mode: GenerationMode, subtests: pytest.Subtests, prepare: Prepare | None = None
) -> list[str]:
    """Fuzz every operation of `schema`, each as a subtest (one failing operation hides no other).

    Negative mode needs something to break, so operations without parameters or a body are skipped
    in it. Returns the labels of the operations fuzzed.
    """
    fuzzed = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if mode is GenerationMode.NEGATIVE and not _has_inputs(operation):
            continue
        fuzzed.append(operation.label)
        with subtests.test(operation=operation.label, mode=mode.value):
            fuzz_operation(operation, mode, prepare)
    return fuzzed


def _has_inputs(operation: schemathesis.APIOperation) -> bool:
    return bool(operation.body) or any(True for _ in operation.iter_parameters())
