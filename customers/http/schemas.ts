import { MetadataSchema, namingSomeField, RefSchema, TextSchema } from '../../api/http/common-schemas.js';
import { z } from '../../api/http/zod.js';
import { MANDATE_STATUSES } from '../../domain/instrument.js';

/** A BCP 47 language tag such as en-GB, taken in its canonical form (the column holds 35 characters). */
const LOCALE_MAX = 35;
const LocaleSchema = z
  .string()
  .max(LOCALE_MAX)
  .refine(
    (tag) => {
      try {
        // Canonical forms may be longer than the tag given ("sh" is "sr-Latn"): the stored form must fit.
        const canonical = Intl.getCanonicalLocales(tag);
        return canonical.length === 1 && canonical[0].length <= LOCALE_MAX;
      } catch {
        return false;
      }
    },
    {
      error: `must be a BCP 47 language tag such as en-GB, of at most ${LOCALE_MAX} characters in its canonical form`,
      params: { code: 'invalid_locale' },
    },
  )
  .transform((tag) => Intl.getCanonicalLocales(tag)[0])
  .openapi({ example: 'en-GB', description: 'BCP 47 language tag' });

const EmailSchema = z.email({ error: 'must be an email address' }).max(254).openapi({ example: 'ada@example.com' });

export const CreateCustomerSchema = z
  .object({
    customerRef: RefSchema.openapi({ description: 'Your reference for the customer, unique in the tenant' }),
    name: TextSchema(200).optional(),
    email: EmailSchema.optional(),
    locale: LocaleSchema.optional(),
    metadata: MetadataSchema.optional(),
  })
  .strict()
  .openapi('CustomerInput');

export const UpdateCustomerSchema = namingSomeField(
  z
    .object({
      name: TextSchema(200).nullable().optional(),
      email: EmailSchema.nullable().optional(),
      locale: LocaleSchema.nullable().optional(),
      metadata: MetadataSchema.optional().openapi({ description: 'Replaces the customer’s metadata whole' }),
    })
    .strict(),
).openapi('CustomerChanges', { description: 'Only what is given changes; null clears a field' });

export const InstrumentSchema = z
  .object({
    instrumentId: z.uuid(),
    appId: z.string(),
    paymentMethod: z.enum(['CARD', 'BANK_DEBIT', 'BANK_TRANSFER']),
    tokenHint: z.string().openapi({
      description:
        'The last four characters of the provider’s token (none of a token shorter than 12); the token itself is never shown',
    }),
    display: z
      .object({
        brand: z.string().optional(),
        last4: z.string().optional(),
        expMonth: z.number().int().optional(),
        expYear: z.number().int().optional(),
        maskedIban: z.string().optional(),
        holderName: z.string().optional(),
      })
      .openapi({ description: 'What may be shown: a card’s brand, last four digits and expiry; a masked IBAN' }),
    status: z.enum(['ACTIVE', 'REMOVED']),
    mandate: z
      .object({ mandateRef: z.string(), status: z.enum(MANDATE_STATUSES), signedAt: z.iso.datetime() })
      .nullable()
      .openapi({ description: 'Bank debits: the mandate the customer signed on the provider’s form' }),
    createdAt: z.iso.datetime(),
  })
  .openapi('Instrument');

export const InstrumentListSchema = z
  .object({ items: z.array(InstrumentSchema), nextCursor: z.string().nullable() })
  .openapi('InstrumentList');

export const InstrumentParamsSchema = z.object({ customerRef: RefSchema, instrumentId: z.uuid() });

export const CustomerSchema = z
  .object({
    customerId: z.uuid(),
    customerRef: z.string(),
    name: z.string().nullable(),
    email: z.string().nullable(),
    locale: z.string().nullable(),
    metadata: z.record(z.string(), z.string()),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .openapi('Customer');

export const CustomerWithInstrumentsSchema = CustomerSchema.extend({
  instruments: z.array(InstrumentSchema).openapi({ description: 'Its saved instruments, newest first' }),
}).openapi('CustomerWithInstruments');

export const CustomerListSchema = z
  .object({ items: z.array(CustomerSchema), nextCursor: z.string().nullable() })
  .openapi('CustomerList');

export const CustomerRefParamsSchema = z.object({ customerRef: RefSchema });
