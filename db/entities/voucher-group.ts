import { EntitySchema } from '@mikro-orm/core';

export interface VoucherGroupEntry {
  voucherId: string;
  enabled: boolean;
}

/** A tenant's named group of catalog vouchers, offered by payout schemes. */
export class VoucherGroup {
  id!: string;
  tenantId!: string;
  name!: string;
  vouchers: VoucherGroupEntry[] = [];
  createdAt: Date = new Date();
  updatedAt: Date = new Date();
}

export const VoucherGroupSchema = new EntitySchema<VoucherGroup>({
  class: VoucherGroup,
  tableName: 'voucher_group',
  indexes: [{ properties: ['tenantId', 'createdAt', 'id'] }],
  properties: {
    id: { type: 'uuid', primary: true },
    tenantId: {
      kind: 'm:1',
      entity: 'Tenant',
      mapToPk: true,
      fieldName: 'tenant_id',
      deleteRule: 'cascade',
      updateRule: 'no action',
    },
    name: { type: 'string', length: 200 },
    vouchers: { type: 'json' },
    createdAt: { type: 'datetime' },
    updatedAt: { type: 'datetime', onUpdate: () => new Date() },
  },
});
