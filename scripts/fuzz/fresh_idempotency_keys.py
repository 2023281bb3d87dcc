"""Schemathesis hook: in the phases Hypothesis generates (fuzzing, stateful), every request's
Idempotency-Key is its own, unless it is one the API must refuse. (The examples and coverage phases
send the keys they build; they read no resource back.)

Generated keys repeat ("0", "a"), and a repeated key with the same body is answered with the stored
answer of the first request, as it should be. The stateful phase then reads a resource deleted since
that first request (POST /customers answered 201 from its key, then GET 404) and reports it as
"created resource not found". A valid key is made unique by a suffix that keeps it within its 255
characters; an invalid one (empty, too long) is sent as generated, to be refused.
"""
import uuid

import schemathesis

HEADER = "idempotency-key"
MAX_LENGTH = 255
SUFFIX_LENGTH = 33  # "-" and 32 hex digits


@schemathesis.hook
def map_headers(ctx, headers):
    # At generation, not before the call: a header changed in `before_call` has schemathesis judge the
    # case again, and a case meant to lack Authorization is then held to a 401 the CLI's -H prevents.
    if not headers:
        return headers
    return {
        name: f"{value}-{uuid.uuid4().hex}"
        if name.lower() == HEADER and isinstance(value, str) and 0 < len(value) <= MAX_LENGTH - SUFFIX_LENGTH
        else value
        for name, value in headers.items()
    }
