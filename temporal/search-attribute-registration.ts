import { status } from '@grpc/grpc-js';
import type { Connection } from '@temporalio/client';
import type { SearchAttributeType } from '@temporalio/common';
import proto from '@temporalio/proto';

// @temporalio/proto is CommonJS: its namespaces come through the default export under ESM.
const { temporal } = proto;

const INDEXED_TYPE = {
  KEYWORD: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  DATETIME: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
} as const;

/** A search attribute of a kind the project defines (defineSearchAttributeKey's result). */
interface RegisteredKey {
  name: string;
  type: typeof SearchAttributeType.KEYWORD | typeof SearchAttributeType.DATETIME;
}

/**
 * Registers search attributes on a Temporal server the project did not start (the dev server gets
 * them on its command line). Attributes that already exist are left alone.
 */
export async function registerSearchAttributes(
  connection: Connection,
  namespace: string,
  keys: readonly RegisteredKey[],
): Promise<void> {
  const existing = await listCustomSearchAttributes(connection, namespace);
  const missing = keys.filter((key) => !existing.has(key.name));
  if (missing.length === 0) return;
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map((key) => [key.name, INDEXED_TYPE[key.type]])),
  });
}

/** Names already registered; empty where the server cannot list them (the Java test server adds but does not list). */
async function listCustomSearchAttributes(connection: Connection, namespace: string): Promise<Set<string>> {
  try {
    const existing = await connection.operatorService.listSearchAttributes({ namespace });
    return new Set(Object.keys(existing.customAttributes ?? {}));
  } catch (err) {
    if ((err as { code?: number }).code === status.UNIMPLEMENTED) return new Set();
    throw err;
  }
}
