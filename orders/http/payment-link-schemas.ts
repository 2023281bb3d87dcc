import { z } from '../../api/http/zod.js';

const MAX_LIFETIME_SECONDS = 90 * 24 * 3600;

export const CreatePaymentLinkSchema = z
  .object({
    expiresInSeconds: z.number().int().min(60).max(MAX_LIFETIME_SECONDS).optional().openapi({
      description:
        'How long the link is valid: by default PAYMENT_LINK_TTL_SECONDS (7 days), for a payout PAYOUT_LINK_TTL_SECONDS (48 hours), which a payout link may not exceed',
    }),
  })
  .strict()
  .openapi('PaymentLinkRequest');

export const PaymentLinkSchema = z
  .object({
    url: z
      .string()
      .openapi({ description: 'The hosted payment page for this one instruction; send it to the customer' }),
    expiresAt: z.string().openapi({ description: 'ISO 8601' }),
  })
  .openapi('PaymentLink');
