import type { MikroORM } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openDatabase } from '../../db/orm.js';
import { RATE_LIMIT_TABLE } from '../../api/http/rate-limit.js';
import { lane } from '../support/lanes.js';

let orm: MikroORM;

beforeAll(async () => {
  orm = await openDatabase({ url: lane().databaseUrl, poolSize: inject('databasePoolSize') });
});

afterAll(async () => {
  await orm?.close();
});

describe('the entities', () => {
  it('describe the tables the migrations made, to the column defaults (a new migration would have nothing to write)', async () => {
    const difference = await orm.getSchemaGenerator().getUpdateSchemaSQL({ wrap: false });
    // The rate limiter's table belongs to rate-limiter-flexible, made by a migration and no entity.
    const statements = difference
      .split(';')
      .map((statement) => statement.trim())
      .filter((statement) => statement && statement !== `drop table if exists "${RATE_LIMIT_TABLE}" cascade`);
    expect(statements).toEqual([]);
  });
});
