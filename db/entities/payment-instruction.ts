/* eslint-disable @typescript-eslint/no-unsafe-declaration-merging, @typescript-eslint/no-empty-object-type -- the class gets its instruction fields from the interface of the same name */
import { BigIntType, EntitySchema, type EntitySchemaMetadata, type EntitySchemaProperty } from '@mikro-orm/core';
import { INSTRUCTION_COLUMNS, INSTRUCTION_FIELDS, type Column, type InstructionRow } from '../../domain/instruction.js';
import type { PaymentOrder } from './payment-order.js';

/**
 * A payment instruction's row in the read model. Its instruction fields (and their columns) are
 * declared once, in domain/instruction.ts; this entity adds what ties the row to its order and tenant.
 */
export interface PaymentInstruction extends InstructionRow {}
export class PaymentInstruction {
  order!: PaymentOrder;
  tenantId!: string;
  metadata: Record<string, string> = {};
  /** Version of the last projection written here (a bigint, as a string); older ones are ignored. */
  projectionVersion = '0';
}

function propertyOf({ column, type, length, nullable }: Column): EntitySchemaProperty<unknown, PaymentInstruction> {
  const mapped = {
    uuid: { type: 'uuid' },
    integer: { type: 'integer' },
    text: { type: 'string', length },
    bigint: { type: new BigIntType('bigint') },
    timestamptz: { type: 'datetime' },
    jsonb: { type: 'json' },
  }[type];
  return { ...mapped, fieldName: column, ...(nullable ? { nullable: true } : {}) };
}

export const PaymentInstructionSchema = new EntitySchema<PaymentInstruction>({
  class: PaymentInstruction,
  tableName: 'payment_instruction',
  uniques: [{ properties: ['order', 'instructionRef'], name: 'payment_instruction_order_ref_unique' }],
  indexes: [
    { properties: ['tenantId', 'status'] },
    // What uninstalling an app, or deleting a scheme, must check first: live instructions using it.
    { properties: ['tenantId', 'appId', 'status'] },
    { properties: ['tenantId', 'schemeId', 'status'] },
  ],
  properties: {
    ...Object.fromEntries(INSTRUCTION_FIELDS.map((field) => [field, propertyOf(INSTRUCTION_COLUMNS[field])])),
    instructionId: { ...propertyOf(INSTRUCTION_COLUMNS.instructionId), primary: true },
    order: { kind: 'm:1', entity: 'PaymentOrder', deleteRule: 'cascade' },
    tenantId: { type: 'uuid' },
    metadata: { type: 'json' },
    projectionVersion: { type: new BigIntType('string') },
  } as unknown as EntitySchemaMetadata<PaymentInstruction>['properties'],
});
