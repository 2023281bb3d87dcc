import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import proto from '@temporalio/proto';

/**
 * The committed workflow histories the replay test runs today's code against. They are
 * append-only: a history is recorded under a new name, never again over an old one (a workflow
 * change that does not replay old histories needs `patched()`, not a re-recording). The manifest
 * holds each one's SHA-256, and the replay test fails when a file changes, disappears, or appears
 * without its line.
 */
export const HISTORIES = new URL('../workflow/histories/', import.meta.url);
const MANIFEST = new URL('MANIFEST.json', HISTORIES);

export function historyFiles(): string[] {
  return readdirSync(HISTORIES)
    .filter((name) => name.endsWith('.binpb'))
    .sort();
}

export function readManifest(): Record<string, string> {
  return JSON.parse(readFileSync(MANIFEST, 'utf8')) as Record<string, string>;
}

export function sha256Of(name: string): string {
  return createHash('sha256')
    .update(readFileSync(new URL(name, HISTORIES)))
    .digest('hex');
}

/**
 * Writes a new history and its manifest line (RECORD_HISTORIES=1). One committed already is kept as
 * it is: to record a scenario again after a change, record it under a new name.
 */
export function recordHistory(name: string, history: proto.temporal.api.history.v1.IHistory): void {
  const file = `${name}.binpb`;
  if (!process.env.RECORD_HISTORIES || existsSync(new URL(file, HISTORIES))) return;
  // Binary protobuf: the SDK's JSON helper trips over the two protobufjs copies installed side by side.
  writeFileSync(new URL(file, HISTORIES), proto.temporal.api.history.v1.History.encode(history).finish());
  const manifest = { ...readManifest(), [file]: sha256Of(file) };
  const sorted = Object.fromEntries(Object.entries(manifest).sort(([a], [b]) => a.localeCompare(b)));
  writeFileSync(MANIFEST, `${JSON.stringify(sorted, null, 2)}\n`);
}
