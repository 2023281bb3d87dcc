import { MetadataSchema, RefSchema, TextSchema } from '../../api/http/common-schemas.js';
import { z } from '../../api/http/zod.js';

/** A BCP 47 language tag such as en-GB, taken in its canonical form. */
const LocaleSchema = z
  .string()
  .max(35)
  .refine(
    (tag) => {
      try {
        return Intl.getCanonicalLocales(tag).length === 1;
      } catch {
        return false;
      }
    },
    { error: 'must be a BCP 47 language tag such as en-GB', params: { code: 'invalid_locale' } },
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

export const UpdateCustomerSchema = z
  .object({
    name: TextSchema(200).nullable().optional(),
    email: EmailSchema.nullable().optional(),
    locale: LocaleSchema.nullable().optional(),
    metadata: MetadataSchema.optional().openapi({ description: 'Replaces the customer’s metadata whole' }),
  })
  .strict()
  .openapi('CustomerChanges', { description: 'Only what is given changes; null clears a field' });

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

export const CustomerListSchema = z
  .object({ items: z.array(CustomerSchema), nextCursor: z.string().nullable() })
  .openapi('CustomerList');

export const CustomerRefParamsSchema = z.object({ customerRef: RefSchema });
