import { NotFoundError, UniqueConstraintViolationException } from '@mikro-orm/postgresql';
import { describe, expect, it } from 'vitest';
import { toApiError } from '../../api/http/error-handler.js';

describe('an error as the API answers it', () => {
  it('is a 409 when a request made at the same moment wrote the same unique thing first, not a 500', () => {
    // What a check-then-insert meets when another request inserted between the two (two installs of one app).
    const raced = toApiError(new UniqueConstraintViolationException(new Error('duplicate key value')));
    expect(raced).toMatchObject({ status: 409, code: 'concurrent_change' });
    expect(raced.message).not.toMatch(/duplicate key/);
    // Anything else unexpected stays a 500 that says nothing of its cause.
    expect(toApiError(new NotFoundError('gone'))).toMatchObject({ status: 500, code: 'internal_error' });
  });
});
