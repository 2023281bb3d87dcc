import type { Request, RequestHandler } from 'express';
import { BANK_ACCOUNT_NUMBER_NOT_ALLOWED } from '../../domain/bank-account-number.js';
import { CARD_NUMBER_NOT_ALLOWED, holdsCardNumber } from '../../domain/card-number.js';
import { paymentDataIn, type PaymentData } from '../../domain/payment-data.js';
import { ApiError, formatPath } from './problem.js';

/** Every request body is JSON: another content type would otherwise reach the handlers as "no body". */
export const requireJsonBody: RequestHandler = (req, _res, next) => {
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (hasBody && !req.is('application/json')) {
    throw new ApiError(415, 'unsupported_media_type', 'send the request body as application/json');
  }
  next();
};

/** Deeper than any request of this API nests (an order's instruction's metadata is 4 levels down). */
export const MAX_BODY_DEPTH = 64;

/**
 * Refuses a body nested deeper than MAX_BODY_DEPTH, strings PostgreSQL cannot store (a NUL
 * character, or a lone UTF-16 surrogate, which jsonb refuses): whatever the API accepts, the database
 * must take, or the caller would get a 500; and any card or bank account number, which it never takes. One iterative walk, so no body can exhaust the stack or
 * cost more than its own size. A batch's items (`batchItems`: the path of its route, and the field
 * holding its array) are checked one by one instead, so that one order holding a card number refuses
 * only itself: such an item is replaced by `{}` before anything else reads the body (the
 * Idempotency-Key's fingerprint of it, validation, the handler), and its refusal is kept for the
 * handler (`refusedBatchItems`).
 */
export function refuseUnstorableStrings(batchItems: ReadonlyMap<string, string> = new Map()): RequestHandler {
  // Express matches a route whatever the case of its letters, and with a trailing slash: so does this.
  const itemsByPath = new Map([...batchItems].map(([path, field]) => [path.toLowerCase(), field]));
  return (req, _res, next) => {
    const field = itemsByPath.get(req.path.replace(/(.)\/+$/, '$1').toLowerCase());
    const body = req.body as unknown;
    const items = field === undefined ? undefined : itemsOf(body, field);
    if (field === undefined || items === undefined) {
      const refusal = unstorableRefusal(body);
      if (refusal) throw refusal;
      return next();
    }
    const outside = unstorableRefusal({ ...(body as object), [field]: [] });
    if (outside) throw outside;
    const refused = new Map<number, ApiError>();
    items.forEach((item, index) => {
      const refusal = unstorableRefusal(item, [field, index]);
      if (refusal) refused.set(index, refusal);
    });
    if (refused.size > 0) {
      req.body = { ...(body as object), [field]: items.map((item, index) => (refused.has(index) ? {} : item)) };
      refusedItems.set(req, refused);
    }
    next();
  };
}

/** The array a batch's body holds at `field`, if it is a batch's body. */
function itemsOf(body: unknown, field: string): unknown[] | undefined {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const items = (body as Record<string, unknown>)[field];
  return Array.isArray(items) ? (items as unknown[]) : undefined;
}

const refusedItems = new WeakMap<Request, ReadonlyMap<number, ApiError>>();

/** A batch's items refused for what they hold, by index: each was replaced by `{}` in the body. */
export function refusedBatchItems(req: Request): ReadonlyMap<number, ApiError> {
  return refusedItems.get(req) ?? new Map();
}

/**
 * Why a value cannot be taken (nested too deep, a string the database cannot store, a card or bank
 * account number), its field named from `at` (a batch's `['orders', 3]`): the error a whole body
 * would be refused with; undefined when it can be.
 */
export function unstorableRefusal(value: unknown, at: (string | number)[] = []): ApiError | undefined {
  const found = findUnstorable(value, at.length);
  if (found === undefined) return undefined;
  if (found === 'too_deep') {
    return new ApiError(400, 'body_too_deep', `the request body is nested deeper than ${MAX_BODY_DEPTH} levels`);
  }
  const full = [...at, ...found.path];
  const path = full.length ? formatPath(full) : 'body';
  if (found.why !== 'character') return paymentDataRefused(found.why, path);
  return new ApiError(400, 'validation_failed', '1 field failed validation', [
    { path, code: 'invalid_character', message: 'holds a NUL character or an unpaired surrogate' },
  ]);
}

/**
 * No card or bank account number is taken in a URL either (ARCHITECTURE.md, "Money, dates, references"):
 * not in a path segment (a reference), not in a query value; nor in the Idempotency-Key header, which
 * is stored with its answer and, for a change to an order, is the id of the workflow's update, in its
 * history. Refused before anything reads, stores or forwards it; the access log masks it.
 */
export const refusePaymentDataInUrlAndKey: RequestHandler = (req, _res, next) => {
  for (const segment of req.path.split('/')) {
    const why = paymentDataIn(decoded(segment));
    if (why) throw paymentDataRefused(why, 'path');
  }
  for (const [name, value] of new URLSearchParams(req.originalUrl.split('?')[1] ?? '')) {
    const inValue = paymentDataIn(value);
    if (inValue) throw paymentDataRefused(inValue, `query.${name}`);
    const inName = paymentDataIn(name);
    if (inName) throw paymentDataRefused(inName, 'query');
  }
  const key = req.header('idempotency-key');
  const inKey = key === undefined ? undefined : paymentDataIn(key);
  if (inKey) throw paymentDataRefused(inKey, 'headers.idempotency-key');
  next();
};

function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function paymentDataRefused(why: PaymentData, path: string): ApiError {
  const [refusal, what] =
    why === 'card_number'
      ? [CARD_NUMBER_NOT_ALLOWED, 'a card number']
      : [BANK_ACCOUNT_NUMBER_NOT_ALLOWED, 'a bank account number'];
  return new ApiError(400, refusal.code, `${what} was sent: it was refused, and kept nowhere`, [{ path, ...refusal }]);
}

interface Visit {
  value: unknown;
  depth: number;
  /** How this value was reached, to name the field at fault. */
  parent?: Visit;
  key?: string | number;
}

function pathOf(visit: Visit): (string | number)[] {
  const path: (string | number)[] = [];
  for (let at: Visit | undefined = visit; at?.parent; at = at.parent) path.unshift(at.key!);
  return path;
}

type Found = { path: (string | number)[]; why: 'character' | PaymentData };

/**
 * A provider's reference of digits alone, as a body's own `providerRef` (a provider's callback, an
 * admin's resolution naming what the provider said): many providers number their payments with 16
 * digits, one in ten passing the Luhn check. We keep such references from providers' answers
 * (apps/provider-answer.ts); refused here, the callback settling that payment, or the resolution
 * ending its unknown outcome, could never be taken. A card number written with spaces or dashes, or
 * anywhere else in the body, is still refused.
 */
function isNumericProviderRef(visit: Visit): boolean {
  return visit.key === 'providerRef' && visit.depth === 1 && /^\d{1,128}$/.test(visit.value as string);
}

/** `startDepth`: how deep in the request body `body` is (a batch's item is 2 down). */
function findUnstorable(body: unknown, startDepth = 0): Found | 'too_deep' | undefined {
  const unstorable = (text: string): Found['why'] | undefined =>
    text.includes('\u0000') || !text.isWellFormed() ? 'character' : paymentDataIn(text);
  const stack: Visit[] = [{ value: body, depth: startDepth }];
  while (stack.length > 0) {
    const visit = stack.pop()!;
    const { value, depth } = visit;
    if (typeof value === 'string') {
      if (isNumericProviderRef(visit)) continue;
      const why = unstorable(value);
      if (why) return { path: pathOf(visit), why };
      continue;
    }
    // A card number as a JSON number is a card number too.
    if (typeof value === 'number') {
      if (Number.isInteger(value) && holdsCardNumber(String(value))) return { path: pathOf(visit), why: 'card_number' };
      continue;
    }
    if (!value || typeof value !== 'object') continue;
    if (depth >= MAX_BODY_DEPTH) return 'too_deep';
    const entries: [string | number, unknown][] = Array.isArray(value)
      ? value.map((v, i) => [i, v])
      : Object.entries(value);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, child] = entries[i];
      const childVisit = { value: child, depth: depth + 1, parent: visit, key };
      // Named by the object holding it: the key itself is what must not be repeated.
      const why = typeof key === 'string' ? unstorable(key) : undefined;
      if (why) return { path: pathOf(visit), why };
      stack.push(childVisit);
    }
  }
  return undefined;
}
