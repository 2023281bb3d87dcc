"""Schemathesis check: no answer shows anything of the tenant (and account) the caller is not.

scripts/fuzz-api.ts creates a second account with a tenant and an order, and passes strings that
belong to them only (ids, references, a metadata marker) in FOREIGN_MARKERS.
"""
import os

import schemathesis

MARKERS = [marker for marker in os.environ.get("FOREIGN_MARKERS", "").split(",") if marker]


@schemathesis.check
def no_foreign_tenant_data(ctx, response, case):
    text = response.text or ""
    for marker in MARKERS:
        if marker in text:
            raise AssertionError(f"the answer shows data of another tenant or account: {marker}")
