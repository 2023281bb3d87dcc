"""The hooks schemathesis loads (SCHEMATHESIS_HOOKS names one module): importing each registers it."""
import foreign_data_check  # noqa: F401
import fresh_idempotency_keys  # noqa: F401
