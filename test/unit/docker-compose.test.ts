import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

interface Service {
  ports?: string[];
  environment?: Record<string, string>;
}

const compose = parse(readFileSync(new URL('../../docker-compose.yml', import.meta.url), 'utf8')) as { services: Record<string, Service> };

describe('docker-compose.yml', () => {
  it('publishes the unauthenticated Temporal frontend and UI on the host’s loopback only', () => {
    for (const name of ['temporal', 'temporal-ui']) {
      const ports = compose.services[name].ports ?? [];
      expect(ports.length, name).toBeGreaterThan(0);
      for (const port of ports) expect(port, name).toMatch(/^127\.0\.0\.1:/);
    }
  });

  it('publishes nothing else but the API', () => {
    const published = Object.entries(compose.services).filter(([, s]) => s.ports?.some((p) => !p.startsWith('127.0.0.1:')));
    expect(published.map(([name]) => name)).toEqual(['api']);
  });

  it('binds every service the others call to all interfaces of its container, not its loopback', () => {
    expect(compose.services.api.environment?.API_HOST).toBe('0.0.0.0');
    expect(compose.services.sandbox.environment?.SANDBOX_HOST).toBe('0.0.0.0');
  });
});
