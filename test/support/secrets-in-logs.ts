import { expect } from 'vitest';
import { workerLogLines, type TestSystem } from './system.js';

/**
 * Asserts that nothing any process of the system logged (the API, the workers' workflows and
 * activities, the sandbox provider) holds a secret the test handed out (a private key, an app's API
 * key, a webhook secret, a payment link's token), an HMAC header or a bearer token.
 */
export function expectNoSecretsInLogs(system: TestSystem, moreSecrets: string[] = []): void {
  const logs = {
    api: system.logLines.join(''),
    workers: workerLogLines.join(''),
    sandbox: system.sandbox.output(),
  };
  const secrets = [...system.issuedSecrets, ...moreSecrets];
  // Each process says at least that it started: an empty log would mean it is not being read.
  for (const [process, log] of Object.entries(logs)) expect(log, `${process} logged nothing`).not.toBe('');
  expect(secrets.length).toBeGreaterThan(0);
  for (const [process, log] of Object.entries(logs)) {
    for (const secret of secrets) expect(whereFound(log, secret), `a secret in the ${process}'s log`).toBe('');
    expect(log).not.toMatch(/Hmac [0-9a-f-]{36}:/);
    expect(log).not.toMatch(/Bearer ey/);
  }
}

/** The log around the secret's first occurrence, the secret itself masked, so a failure says where it leaked. */
function whereFound(log: string, secret: string): string {
  const at = log.indexOf(secret);
  if (at < 0) return '';
  return `${log.slice(Math.max(0, at - 200), at)}<SECRET>${log.slice(at + secret.length, at + secret.length + 80)}`;
}
