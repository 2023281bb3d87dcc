import { z } from '../zod.js';
import { DomainValidationError } from '../../domain/errors.js';
import { parseScheduleDate } from '../../domain/dates.js';
import { INSTRUCTION_STATUSES, ORDER_STATUSES } from '../../domain/instruction-status.js';
import { parseAmount } from '../../domain/money.js';
import {
  AmountSchema,
  CountrySchema,
  CurrencySchema,
  MetadataSchema,
  RefSchema,
  ScheduleDateSchema,
} from './common.js';

export const MAX_INSTRUCTIONS_PER_ORDER = 500;

export const InstructionInputSchema = z
  .object({
    instructionRef: RefSchema,
    direction: z.enum(['DEBIT', 'CREDIT']).openapi({ description: 'DEBIT collects from the customer, CREDIT pays out' }),
    amount: AmountSchema,
    currency: CurrencySchema,
    country: CountrySchema,
    openDate: ScheduleDateSchema,
    dueDate: ScheduleDateSchema,
    customerRef: RefSchema.optional(),
    financialInstrumentId: z.string().min(1).max(100).optional().openapi({
      description: 'Stored instrument collected from automatically at the due date; without one the instruction goes LATE',
      example: 'card_visa_4242',
    }),
    metadata: MetadataSchema.optional(),
  })
  .strict()
  .superRefine((instruction, ctx) => {
    try {
      parseAmount(instruction.amount, instruction.currency);
    } catch (err) {
      if (!(err instanceof DomainValidationError)) throw err;
      // Shape and currency errors are reported by their own fields; only the precision is news here.
      if (err.code === 'invalid_amount_precision' || err.code === 'invalid_amount') {
        ctx.addIssue({ code: 'custom', path: ['amount'], message: err.message, params: { code: err.code } });
      }
    }
    const open = parseScheduleDate(instruction.openDate);
    const due = parseScheduleDate(instruction.dueDate);
    if (open && due && due < open) {
      ctx.addIssue({ code: 'custom', path: ['dueDate'], message: 'dueDate must not be before openDate', params: { code: 'due_before_open' } });
    }
  })
  .openapi('InstructionInput');

export const CreateOrderSchema = z
  .object({
    orderRef: RefSchema,
    customerRef: RefSchema.optional(),
    metadata: MetadataSchema.optional(),
    instructions: z.array(InstructionInputSchema).min(1).max(MAX_INSTRUCTIONS_PER_ORDER),
  })
  .strict()
  .superRefine(
    (order, ctx) => {
      const seen = new Set<string>();
      order.instructions.forEach((instruction, index) => {
        const ref = instruction?.instructionRef;
        if (typeof ref !== 'string') return;
        if (seen.has(ref)) {
          ctx.addIssue({
            code: 'custom',
            path: ['instructions', index, 'instructionRef'],
            message: 'instructionRef must be unique within the order',
            params: { code: 'duplicate_instruction_ref' },
          });
        }
        seen.add(ref);
      });
    },
    // Run even when other fields failed, so the caller hears of every problem in one answer.
    { when: (payload) => Array.isArray((payload.value as { instructions?: unknown })?.instructions) },
  )
  .openapi('CreateOrder');

export type CreateOrderInput = z.infer<typeof CreateOrderSchema>;

const Timestamp = z.iso.datetime().nullable();

export const InstructionSchema = z
  .object({
    instructionRef: z.string(),
    direction: z.enum(['DEBIT', 'CREDIT']),
    amount: z.string(),
    currency: z.string(),
    country: z.string(),
    openDate: z.iso.datetime(),
    dueDate: z.iso.datetime(),
    customerRef: z.string().nullable(),
    financialInstrumentId: z.string().nullable(),
    metadata: z.record(z.string(), z.string()),
    status: z.enum(INSTRUCTION_STATUSES),
    attempts: z.number().int(),
    appId: z.string().nullable(),
    providerRef: z.string().nullable(),
    failureCode: z.string().nullable(),
    nextActionAt: Timestamp,
    openedAt: Timestamp,
    processingAt: Timestamp,
    lateAt: Timestamp,
    settledAt: Timestamp,
    failedAt: Timestamp,
    cancelledAt: Timestamp,
  })
  .openapi('Instruction');

export const OrderSchema = z
  .object({
    orderId: z.uuid(),
    orderRef: z.string(),
    customerRef: z.string().nullable(),
    metadata: z.record(z.string(), z.string()),
    status: z.enum(ORDER_STATUSES),
    workflowId: z.string(),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
    instructions: z.array(InstructionSchema),
  })
  .openapi('Order');

export const OrderRefParamsSchema = z.object({ orderRef: RefSchema });

export const ListOrdersQuerySchema = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(25),
    cursor: z.string().optional().openapi({ description: 'nextCursor of the previous page' }),
    status: z.enum(ORDER_STATUSES).optional(),
    customerRef: RefSchema.optional(),
  })
  .strict();

export const OrderListSchema = z
  .object({ items: z.array(OrderSchema), nextCursor: z.string().nullable() })
  .openapi('OrderList');
