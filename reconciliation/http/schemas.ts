import { PageQuerySchema, TimestampQuerySchema } from '../../api/http/common-schemas.js';
import { z } from '../../api/http/zod.js';

/** How long a period one requested run may cover. */
export const MAX_PERIOD_DAYS = 31;

export const RequestRunSchema = z
  .object({
    appId: z.string().min(1).max(64).openapi({ example: 'SANDBOX_CARD' }),
    from: TimestampQuerySchema.openapi({ description: 'Payments made at or after this time' }),
    to: TimestampQuerySchema.openapi({
      description: `Payments made before this time; at most ${MAX_PERIOD_DAYS} days after from`,
    }),
  })
  .strict();

export const RunParamsSchema = z.object({ runId: z.uuid() }).strict();
export const RunsQuerySchema = PageQuerySchema;

const PaymentSideSchema = z
  .object({ direction: z.string(), amount: z.string(), currency: z.string(), status: z.string() })
  .nullable();

export const RunSchema = z
  .object({
    runId: z.uuid(),
    appId: z.string(),
    periodFrom: z.iso.datetime(),
    periodTo: z.iso.datetime(),
    trigger: z.enum(['SCHEDULED', 'REQUESTED']),
    status: z.enum(['RUNNING', 'SUCCEEDED', 'FAILED']),
    compared: z.number().int().openapi({ description: 'Payments compared: the provider’s and ours' }),
    mismatches: z
      .number()
      .int()
      .openapi({ description: 'Differences found, all of them (a recheck’s: those told before too)' }),
    recorded: z.number().int().openapi({
      description:
        'Differences kept as items and told as events: the first 1,000 found at most (a recheck’s: of those no earlier run of the app told)',
    }),
    failure: z.string().nullable().openapi({ description: 'Why a FAILED run could not compare' }),
    createdAt: z.iso.datetime(),
    finishedAt: z.iso.datetime().nullable(),
  })
  .openapi('ReconciliationRun');

export const RunListSchema = z
  .object({ items: z.array(RunSchema), nextCursor: z.string().nullable() })
  .openapi('ReconciliationRunList');

export const ItemSchema = z
  .object({
    itemId: z.uuid(),
    kind: z.enum(['missing', 'extra', 'amount', 'currency', 'status', 'shared']).openapi({
      description:
        'missing: settled here, unknown to the provider; extra: settled by the provider, no instruction here; amount, currency, status: both have it, otherwise; shared: more than one instruction here holds the reference (orderRef and instructionRef name one of them)',
    }),
    providerRef: z.string(),
    orderRef: z.string().nullable(),
    instructionRef: z.string().nullable(),
    ours: PaymentSideSchema,
    theirs: PaymentSideSchema,
    createdAt: z.iso.datetime(),
  })
  .openapi('ReconciliationItem');

export const ItemListSchema = z
  .object({ items: z.array(ItemSchema), nextCursor: z.string().nullable() })
  .openapi('ReconciliationItemList');
