import type { AddressInfo } from 'node:net';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { healthRouter } from '../../api/system/health.js';
import { CONNECTION_ACQUIRE_TIMEOUT_MS, ormConfig } from '../../db/orm-config.js';

describe('GET /readyz', () => {
  it('answers a burst of probes with one check of each dependency', async () => {
    const calls = { database: 0, temporal: 0 };
    // Stand-ins for the two dependencies, counting how often they are asked.
    const orm = {
      em: { fork: () => ({ getConnection: () => ({ execute: () => Promise.resolve(void calls.database++) }) }) },
    } as unknown as MikroORM;
    const temporal = {
      workflowService: { getSystemInfo: () => Promise.resolve(void calls.temporal++) },
    } as unknown as Client;
    const server = express().use(healthRouter(orm, temporal)).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/readyz`;
      const answers = await Promise.all(Array.from({ length: 50 }, () => fetch(url).then((r) => r.status)));
      expect(answers).toEqual(Array(50).fill(200));
      expect(calls).toEqual({ database: 1, temporal: 1 });
    } finally {
      server.close();
    }
  });
});

describe('database connections', () => {
  it('time out waiting for a connection well inside an activity’s 30 s, so a starved activity fails and retries', () => {
    const config = ormConfig({ url: 'postgres://x@127.0.0.1/x', poolSize: 7 });
    expect(config.pool).toMatchObject({ max: 7 });
    expect((config.driverOptions as { acquireConnectionTimeout: number }).acquireConnectionTimeout).toBe(
      CONNECTION_ACQUIRE_TIMEOUT_MS,
    );
    expect(CONNECTION_ACQUIRE_TIMEOUT_MS).toBeLessThan(30_000);
  });
});
