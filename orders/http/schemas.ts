import { PROVIDER_REF } from '../../apps/provider-answer.js';
import { DomainValidationError } from '../../domain/errors.js';
import { isDateOnly, parseScheduleDate } from '../../domain/dates.js';
import { dueBeforeOpen, DUE_BEFORE_OPEN, FINANCIAL_INSTRUMENT_ID } from '../../domain/instruction.js';
import { INSTRUCTION_STATUSES, ORDER_STATUSES } from '../../domain/instruction-status.js';
import { parseAmount } from '../../domain/money.js';
import { REFUND_STATUSES } from '../../domain/refund.js';
import { PAYMENT_METHODS } from '../../domain/scheme.js';
import {
  AmountSchema,
  CountrySchema,
  CurrencySchema,
  MetadataSchema,
  PageQuerySchema,
  RefSchema,
  ScheduleDateSchema,
  TextSchema,
  TimestampQuerySchema,
} from '../../api/http/common-schemas.js';
import { z } from '../../api/http/zod.js';
import { MAX_INSTRUCTIONS_PER_ORDER, MAX_ORDERS_PER_BATCH } from '../contract/limits.js';
import { namingSomeField, ProblemSchema } from '../../api/http/common-schemas.js';

const FinancialInstrumentIdSchema = z
  .string()
  .regex(FINANCIAL_INSTRUMENT_ID.pattern, { error: FINANCIAL_INSTRUMENT_ID.message });

const InstrumentIdSchema = z.uuid().openapi({
  description:
    'A saved instrument of the instruction’s customer (GET /customers/{customerRef}/instruments), paid with its provider’s token',
});
const ONE_INSTRUMENT = 'name a financialInstrumentId or an instrumentId, not both';

export const InstructionInputSchema = z
  .object({
    instructionRef: RefSchema,
    direction: z
      .enum(['DEBIT', 'CREDIT'])
      .openapi({ description: 'DEBIT collects from the customer, CREDIT pays out' }),
    amount: AmountSchema,
    currency: CurrencySchema,
    country: CountrySchema,
    openDate: ScheduleDateSchema,
    dueDate: ScheduleDateSchema,
    customerRef: RefSchema.optional(),
    schemeId: z.uuid().optional().openapi({
      description:
        'Collection scheme for a DEBIT, payout scheme for a CREDIT; the tenant’s default of that kind when absent',
    }),
    paymentMethod: z
      .enum(PAYMENT_METHODS)
      .optional()
      .openapi({ description: 'One the scheme offers for this payment; the best one when absent' }),
    financialInstrumentId: FinancialInstrumentIdSchema.optional().openapi({
      description:
        'Stored card or account collected from (or paid to) at the due date, or the voucher of a voucher payout; without one the instruction goes LATE',
      example: 'card_visa_4242',
    }),
    instrumentId: InstrumentIdSchema.optional(),
    metadata: MetadataSchema.optional(),
  })
  .strict()
  .superRefine((instruction, ctx) => {
    if (instruction.instrumentId !== undefined && instruction.financialInstrumentId !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['instrumentId'],
        message: ONE_INSTRUMENT,
        params: { code: 'one_instrument' },
      });
    }
    // An amount of the wrong shape, or in no currency, is told once by its own field's schema; what
    // is news here is the amount in its currency (too many decimals, zero, too large).
    if (AmountSchema.safeParse(instruction.amount).success) {
      try {
        parseAmount(instruction.amount, instruction.currency);
      } catch (err) {
        if (!(err instanceof DomainValidationError)) throw err;
        if (err.code !== 'invalid_currency') {
          ctx.addIssue({ code: 'custom', path: ['amount'], message: err.message, params: { code: err.code } });
        }
      }
    }
    const open = parseScheduleDate(instruction.openDate);
    const due = parseScheduleDate(instruction.dueDate);
    // A calendar date is midnight in the tenant's time zone, not known here: a date against a
    // date-time is compared when the order is planned, in that zone (refuseDueBeforeOpen).
    const sameKind = isDateOnly(instruction.openDate) === isDateOnly(instruction.dueDate);
    if (open && due && sameKind && dueBeforeOpen(open, due)) {
      ctx.addIssue({
        code: 'custom',
        path: ['dueDate'],
        message: DUE_BEFORE_OPEN.message,
        params: { code: DUE_BEFORE_OPEN.code },
      });
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

// Each order is checked on its own (against CreateOrder), so that one bad order refuses only itself.
export const CreateOrderBatchSchema = z
  .object({
    orders: z
      .array(
        // Any value: each is checked on its own, so that one not even an object refuses only itself.
        z.unknown().openapi({
          description:
            'An order as POST /order-management takes it (CreateOrder); each is checked on its own, and one that is not an order (not even an object) refuses only itself',
        }),
      )
      .min(1)
      .max(MAX_ORDERS_PER_BATCH),
  })
  .strict()
  .openapi('CreateOrderBatch');

export const OrderBatchResultSchema = z
  .object({
    index: z.number().int().openapi({ description: 'The order’s place in the request’s `orders`' }),
    orderRef: z.string().optional(),
    status: z
      .number()
      .int()
      .openapi({
        description:
          '202: taken, its workflow started; 200: this order was taken before, sent as it is now (it is not taken again); ' +
          '409 order_ref_conflict: the orderRef is taken by an order with other contents; ' +
          '400, 404, 409: refused, as POST /order-management would refuse it, with `problem` saying why',
      }),
    orderId: z.uuid().optional(),
    problem: ProblemSchema.optional(),
  })
  .openapi('OrderBatchResult');

export const OrderBatchSchema = z
  .object({
    results: z.array(OrderBatchResultSchema),
    taken: z.number().int(),
    alreadyTaken: z.number().int(),
    refused: z.number().int(),
  })
  .openapi('OrderBatch');
export type InstructionInput = z.infer<typeof InstructionInputSchema>;
export type AmendInstructionInput = z.infer<typeof AmendInstructionSchema>;
export type ResolveInstructionInput = z.infer<typeof ResolveInstructionSchema>;

export const InstructionRefParamsSchema = z.object({ orderRef: RefSchema, instructionRef: RefSchema });

export const AmendInstructionSchema = namingSomeField(
  z
    .object({
      amount: AmountSchema.optional(),
      openDate: ScheduleDateSchema.optional(),
      dueDate: ScheduleDateSchema.optional(),
      financialInstrumentId: FinancialInstrumentIdSchema.optional(),
      instrumentId: InstrumentIdSchema.optional(),
      schemeId: z.uuid().optional(),
      paymentMethod: z.enum(PAYMENT_METHODS).optional(),
      metadata: MetadataSchema.optional(),
    })
    .strict()
    .refine((body) => body.instrumentId === undefined || body.financialInstrumentId === undefined, {
      error: ONE_INSTRUMENT,
      path: ['instrumentId'],
      params: { code: 'one_instrument' },
    }),
).openapi('InstructionAmendment', {
  description:
    'Allowed while the instruction is PENDING, OPEN or LATE (the open date only while PENDING). A new amount or scheme is resolved again.',
});

export const PayInstructionSchema = z
  .object({
    appId: z.string().min(1).max(64),
    paymentMethod: z.enum(PAYMENT_METHODS),
    financialInstrumentId: FinancialInstrumentIdSchema.optional(),
    instrumentId: InstrumentIdSchema.optional(),
    voucherId: z
      .string()
      .min(1)
      .max(100)
      .optional()
      .openapi({ description: 'For a VOUCHER payout: a voucher of the option (GET …/options)' }),
    amount: AmountSchema.optional().openapi({
      description:
        'The amount the customer was shown (GET …/options): if the instruction has another now (amended since), ' +
        'nothing is paid and the answer is 409 amount_changed',
    }),
  })
  .strict()
  .superRefine((body, ctx) => {
    if (body.instrumentId !== undefined && body.financialInstrumentId !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['instrumentId'],
        message: ONE_INSTRUMENT,
        params: { code: 'one_instrument' },
      });
    }
    // A voucher payout names its voucher, any other payment its instrument: never one for the other.
    const [needed, other] =
      body.paymentMethod === 'VOUCHER'
        ? (['voucherId', 'financialInstrumentId'] as const)
        : (['financialInstrumentId', 'voucherId'] as const);
    if (body[needed] === undefined && (needed === 'voucherId' || body.instrumentId === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [needed],
        message: `${body.paymentMethod} needs ${needed}`,
        params: { code: 'required' },
      });
    }
    if (body[other] !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [other],
        message: `${body.paymentMethod} takes no ${other}`,
        params: { code: 'not_allowed' },
      });
    }
  })
  .openapi('InstructionPayment');

export const RefundInputSchema = z
  .object({
    amount: z
      .string()
      .regex(/^(0|[1-9]\d{0,17})(\.\d+)?$/, { error: 'must be a positive decimal string such as "12.50"' })
      .openapi({
        description: 'In the instruction’s currency; at most what settled less what was refunded or returned',
      }),
    reason: TextSchema(200).optional().openapi({ description: 'Why: kept with the refund and sent to the provider' }),
  })
  .strict()
  .openapi('RefundRequest');

export const RefundSchema = z
  .object({
    refundId: z.uuid(),
    instructionRef: z.string(),
    number: z.number().int().openapi({ description: 'Its place among the instruction’s refunds, from 1' }),
    amount: z.string(),
    currency: z.string(),
    reason: z.string().nullable(),
    paymentRef: z.string().openapi({ description: 'The provider’s reference of the payment refunded' }),
    status: z.enum(REFUND_STATUSES),
    providerRef: z.string().nullable(),
    failureCode: z.string().nullable(),
    createdAt: z.iso.datetime(),
    succeededAt: z.iso.datetime().nullable(),
    failedAt: z.iso.datetime().nullable(),
  })
  .openapi('Refund');

export const RefundListSchema = z
  .object({ items: z.array(RefundSchema), nextCursor: z.string().nullable() })
  .openapi('RefundList');

export const RetryInstructionSchema = z
  .object({
    financialInstrumentId: FinancialInstrumentIdSchema.optional().openapi({
      description: 'Collect from (or pay to) this instrument instead',
    }),
    instrumentId: InstrumentIdSchema.optional(),
    dueDate: ScheduleDateSchema.optional().openapi({ description: 'When to try; now when absent or past' }),
  })
  .strict()
  .refine((body) => body.instrumentId === undefined || body.financialInstrumentId === undefined, {
    error: ONE_INSTRUMENT,
    path: ['instrumentId'],
    params: { code: 'one_instrument' },
  })
  .openapi('InstructionRetry', {
    description:
      'Only for a FAILED instruction: it opens again, with a new idempotency key and the dunning schedule from its start.',
  });

/** A provider's reference, as a tenant admin gives it when resolving an unknown outcome. */
const ResolvedProviderRefSchema = z.string().regex(PROVIDER_REF, { error: 'must be 1–128 printable ASCII characters' });

export const ResolveInstructionSchema = z
  .object({
    outcome: z.enum(['SETTLED', 'NOT_PAID']).openapi({
      description:
        'What the provider says became of the payment: SETTLED (the instruction is settled), or NOT_PAID (nothing moved; ' +
        'the key is released and the instruction waits LATE for an amendment, a payment or a cancel)',
    }),
    providerRef: ResolvedProviderRefSchema.optional().openapi({
      description: 'Required for SETTLED: the provider’s reference of the payment that settled',
    }),
    note: TextSchema(500).openapi({ description: 'How it was found out (kept in the audit log)' }),
  })
  .strict()
  // A settlement is its payment's: refunds and returns name the payment by this reference.
  .refine((body) => body.outcome !== 'SETTLED' || body.providerRef !== undefined, {
    error: 'a SETTLED outcome names the provider’s reference of the payment',
    path: ['providerRef'],
    params: { code: 'required' },
  })
  .openapi('InstructionResolution', {
    description:
      'Only for an instruction whose last payment call has an unknown outcome (failure code provider_unavailable or outcome_unknown), ' +
      'or a payment PENDING at a provider that refused for good to say how it ended (failure code status_refused:…).',
  });

export const InstructionOptionsSchema = z
  .object({
    instructionRef: z.string(),
    status: z.enum(INSTRUCTION_STATUSES),
    amount: z.string(),
    currency: z.string(),
    country: z.string(),
    direction: z.enum(['DEBIT', 'CREDIT']),
    options: z.array(
      z.object({
        paymentMethod: z.enum(PAYMENT_METHODS),
        appId: z.string(),
        priority: z.number().int(),
        vouchers: z
          .array(z.object({ voucherId: z.string(), brand: z.string(), name: z.string() }))
          .optional()
          .openapi({
            description:
              'VOUCHER options: the vouchers the scheme’s groups offer for this amount, currency and country',
          }),
      }),
    ),
  })
  .openapi('InstructionOptions');

const Timestamp = z.iso.datetime().nullable();

export const InstructionSchema = z
  .object({
    instructionRef: z.string(),
    direction: z.enum(['DEBIT', 'CREDIT']),
    amount: z.string(),
    currency: z.string(),
    country: z.string(),
    openDate: z.iso.datetime(),
    dueDate: z.iso.datetime().openapi({ description: 'The due date asked for' }),
    chargeDate: z.iso.datetime().openapi({
      description:
        'When it is charged: the due date moved off weekends and public holidays of its country by the tenant’s businessDayRule',
    }),
    customerRef: z.string().nullable(),
    financialInstrumentId: z.string().nullable(),
    instrumentId: z.uuid().nullable().openapi({ description: 'The stored instrument it pays with, if any' }),
    metadata: z.record(z.string(), z.string()),
    schemeId: z.uuid().nullable(),
    schemeVersion: z.number().int().nullable(),
    paymentMethod: z.enum(PAYMENT_METHODS).nullable(),
    status: z.enum(INSTRUCTION_STATUSES),
    attempts: z.number().int(),
    appId: z
      .string()
      .nullable()
      .openapi({ description: 'The installed app it pays through, as its scheme resolved it' }),
    providerRef: z.string().nullable(),
    voucherCode: z.string().nullable(),
    failureCode: z
      .string()
      .nullable()
      .openapi({
        description:
          'Why the last payment did not stand: the provider’s decline code, or for a payment taken back `returned:` or ' +
          '`charged_back:` and its code (`returned_replaced_secret:`, `charged_back_replaced_secret:` when told only under a callback ' +
          'secret the tenant replaced since: not collected again; check with the provider before retrying)',
      }),
    settledAmount: z.string().openapi({
      description: 'What settled, every time it did (a payment returned and collected again counts twice)',
    }),
    refundedAmount: z.string().openapi({ description: 'What refunds that succeeded gave back' }),
    returnedAmount: z.string().openapi({ description: 'What returns and chargebacks took back' }),
    returnCode: z.string().nullable().openapi({
      description: 'Why its last settled payment was taken back: the bank’s return code, or the chargeback’s reason',
    }),
    nextActionAt: Timestamp,
    openedAt: Timestamp,
    processingAt: Timestamp,
    lateAt: Timestamp,
    settledAt: Timestamp,
    failedAt: Timestamp,
    cancelledAt: Timestamp,
    returnedAt: Timestamp,
  })
  .openapi('Instruction');

const CurrencyTotalsSchema = z
  .object({
    collected: z.string(),
    refunded: z.string(),
    returned: z.string(),
    netCollected: z.string(),
    paidOut: z.string(),
    outstanding: z.string(),
  })
  .openapi('CurrencyTotals', {
    description:
      'Decimal amounts: collected (every settlement), refunded, returned (returns and chargebacks), netCollected (collected less both), paidOut, and outstanding (instructions not yet settled, failed or cancelled)',
  });

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
    totals: z.record(z.string(), CurrencyTotalsSchema).openapi({ description: 'Per currency' }),
    instructions: z.array(InstructionSchema),
  })
  .openapi('Order');

const InstructionSummarySchema = z
  .object({
    total: z.number().int(),
    byStatus: z.partialRecord(z.enum(INSTRUCTION_STATUSES), z.number().int()),
  })
  .openapi('InstructionSummary', { description: 'How many instructions the order has, by status' });

/** An order as lists show it: without its instructions, which GET /order-management/{orderRef} has. */
export const OrderSummarySchema = OrderSchema.omit({ instructions: true, totals: true })
  .extend({ instructionSummary: InstructionSummarySchema })
  .openapi('OrderSummary');

export const OrderRefParamsSchema = z.object({ orderRef: RefSchema });

export const ListOrdersQuerySchema = PageQuerySchema.extend({
  status: z.enum(ORDER_STATUSES).optional(),
  customerRef: RefSchema.optional(),
  createdFrom: TimestampQuerySchema.optional().openapi({ description: 'Only orders created at or after this time' }),
  createdTo: TimestampQuerySchema.optional().openapi({ description: 'Only orders created before this time' }),
}).strict();

export const SearchInstructionsQuerySchema = PageQuerySchema.extend({
  status: z.enum(INSTRUCTION_STATUSES).optional(),
  direction: z.enum(['DEBIT', 'CREDIT']).optional(),
  appId: z.string().max(64).optional(),
  currency: z
    .string()
    .regex(/^[A-Z]{3}$/, { error: 'must be an ISO 4217 code such as EUR' })
    .optional(),
  customerRef: RefSchema.optional(),
  dueFrom: TimestampQuerySchema.optional().openapi({ description: 'Only instructions due at or after this time' }),
  dueTo: TimestampQuerySchema.optional().openapi({ description: 'Only instructions due before this time' }),
  settledFrom: TimestampQuerySchema.optional().openapi({
    description:
      'Only instructions last settled at or after this time (the page is then ordered by settlement); each settlement, an earlier one of an instruction collected again included, is in the settlement export',
  }),
  settledTo: TimestampQuerySchema.optional().openapi({
    description: 'Only instructions last settled before this time',
  }),
}).strict();

export const InstructionSearchListSchema = z
  .object({
    items: z.array(InstructionSchema.extend({ orderRef: z.string() }).openapi('FoundInstruction')),
    nextCursor: z.string().nullable(),
  })
  .openapi('InstructionSearchList');

export const SettlementExportQuerySchema = z
  .object({
    from: TimestampQuerySchema.openapi({ description: 'Settled at or after this time' }),
    to: TimestampQuerySchema.openapi({ description: 'Settled before this time' }),
  })
  .strict();

export const OrderListSchema = z
  .object({ items: z.array(OrderSummarySchema), nextCursor: z.string().nullable() })
  .openapi('OrderList');

export type RefundInput = z.infer<typeof RefundInputSchema>;

export const RefundParamsSchema = InstructionRefParamsSchema.extend({ refundId: z.uuid() });

export const ResolveRefundSchema = z
  .object({
    outcome: z.enum(['SUCCEEDED', 'FAILED']).openapi({
      description:
        'What the provider says became of the refund: SUCCEEDED (it counts as refunded), or FAILED (nothing was refunded; ' +
        'its amount may be refunded again, under a new refund)',
    }),
    providerRef: ResolvedProviderRefSchema.optional().openapi({
      description: 'Required for SUCCEEDED: the provider’s reference of the refund',
    }),
    note: TextSchema(500).openapi({ description: 'How it was found out (kept in the audit log)' }),
  })
  .strict()
  .refine((body) => body.outcome !== 'SUCCEEDED' || body.providerRef !== undefined, {
    error: 'a SUCCEEDED outcome names the provider’s reference of the refund',
    path: ['providerRef'],
    params: { code: 'required' },
  })
  .openapi('RefundResolution', {
    description:
      'Only for a refund whose outcome is unknown (failure code provider_unavailable or outcome_unknown:…), or one PENDING at a ' +
      'provider that refused for good to say how it ended (failure code status_refused:…).',
  });
export type ResolveRefundInput = z.infer<typeof ResolveRefundSchema>;
export type RetryInstructionInput = z.infer<typeof RetryInstructionSchema>;
