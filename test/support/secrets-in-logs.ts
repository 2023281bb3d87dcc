import { expect } from 'vitest';
import type { TestSystem } from './system.js';

/** Asserts that nothing the system logged holds a private key, an HMAC header or a bearer token. */
export function expectNoSecretsInLogs(system: TestSystem, moreKeys: string[] = []): void {
  const log = system.logLines.join('');
  const keys = [...system.issuedPrivateKeys, ...moreKeys];
  expect(system.logLines.length).toBeGreaterThan(10);
  expect(keys.length).toBeGreaterThan(0);
  for (const privateKey of keys) expect(log).not.toContain(privateKey);
  expect(log).not.toMatch(/Hmac [0-9a-f-]{36}:/);
  expect(log).not.toMatch(/Bearer ey/);
}
