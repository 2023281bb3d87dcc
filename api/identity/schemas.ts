import { z } from '../http/zod.js';

export const AccessTokenSchema = z
  .object({
    accessToken: z.string().openapi({ description: 'Send as `Authorization: Bearer {accessToken}`' }),
    expires: z.number().int().openapi({ description: 'Expiry, epoch milliseconds' }),
  })
  .openapi('AccessToken');

export const HmacHeaderSchema = z.object({
  authorization: z.string().max(400).openapi({
    description: 'Hmac {publicKey}:{nonce}:{epochSeconds}:{signature}; see the README for the algorithm',
    example: 'Hmac 6c2b1f0e-…:5f1b…:1767225600:3q2+7w==',
  }),
});
