import { EntitySchema } from '@mikro-orm/core';

/** Administrative root: owns tenants and account keys. */
export class Account {
  id!: string;
  name!: string;
  createdAt: Date = new Date();
}

export const AccountSchema = new EntitySchema<Account>({
  class: Account,
  tableName: 'account',
  properties: {
    id: { type: 'uuid', primary: true },
    name: { type: 'string', length: 200 },
    createdAt: { type: 'datetime' },
  },
});
