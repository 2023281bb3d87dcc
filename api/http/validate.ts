import type { z } from 'zod';
import { ApiError, formatPath, type FieldError } from './problem.js';

/**
 * Parses `value` with `schema` or throws a 400 naming every field at fault. `where` prefixes the
 * paths: `query`, `params`, or a field of the body checked on its own (`configuration`).
 */
export function validate<S extends z.ZodType>(schema: S, value: unknown, where?: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const errors: FieldError[] = result.error.issues.flatMap((issue) => {
    // A problem with the body as a whole (not an object, say) is reported at `body`.
    const base = where ? [where, ...issue.path] : issue.path.length > 0 ? issue.path : ['body'];
    const code = issue.code === 'custom' && typeof issue.params?.code === 'string' ? issue.params.code : issue.code;
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({
        path: formatPath([...base, key]),
        code: 'unknown_field',
        message: 'is not a known field',
      }));
    }
    return [{ path: formatPath(base), code, message: issue.message }];
  });
  throw new ApiError(
    400,
    'validation_failed',
    `${errors.length} field${errors.length === 1 ? '' : 's'} failed validation`,
    errors,
  );
}
