import type { EntityManager } from '@mikro-orm/postgresql';
import { databaseNow } from '../db/database-clock.js';
import { recordAudit } from '../api/audit/record-audit.js';
import type { Principal } from '../api/auth/principal.js';
import { PaymentLinkRevocation } from '../db/entities/index.js';
import { isAtRest } from '../domain/instruction-status.js';
import { Refusal } from '../domain/refusal.js';
import type { OrderService } from './order-service.js';
import {
  issuePaymentLink,
  verifyPaymentLink,
  type PaymentLinkClaims,
  type PaymentLinkKeys,
} from './payment-link-token.js';

export interface PaymentLinkSettings {
  /** The API as customers reach it: links point at `{publicApiUrl}/pay/{token}`. */
  publicApiUrl: string;
  /** How long a link to pay is valid unless asked otherwise. */
  defaultTtlSeconds: number;
  /** How long a link to a payout may be valid at most (its holder chooses where the money goes), and by default. */
  payoutTtlSeconds: number;
}

export type LinkOpening =
  { valid: true; claims: PaymentLinkClaims } | { valid: false; reason: 'expired' | 'invalid' | 'revoked' };

/**
 * Links to the hosted payment page (ARCHITECTURE.md, "Payment page"): each names one instruction,
 * expires, survives a master-key rotation (until the previous keys are dropped), and can be
 * revoked, which ends every link to that instruction issued until then.
 */
export class PaymentLinks {
  constructor(
    private readonly orders: OrderService,
    private readonly keys: PaymentLinkKeys,
    private readonly settings: PaymentLinkSettings,
  ) {}

  /** A link to the instruction, audited: its holder may pay it, or (a payout) choose where the money goes. */
  async issue(
    em: EntityManager,
    actor: Principal,
    tenantId: string,
    orderRef: string,
    instructionRef: string,
    expiresInSeconds: number | undefined,
  ): Promise<{ url: string; expiresAt: Date }> {
    const order = await this.orders.findOrder(em, tenantId, orderRef);
    const instruction = await this.orders.findInstruction(em, order, instructionRef);
    if (isAtRest(instruction.status)) {
      throw new Refusal(
        'conflict',
        'instruction_not_payable',
        `instruction ${instructionRef} is ${instruction.status}`,
      );
    }
    const { defaultTtlSeconds, payoutTtlSeconds, publicApiUrl } = this.settings;
    const payout = instruction.direction === 'CREDIT';
    if (payout && expiresInSeconds !== undefined && expiresInSeconds > payoutTtlSeconds) {
      throw Refusal.invalid([
        {
          path: 'expiresInSeconds',
          code: 'too_long_for_payout',
          message: `a payout link is valid for at most ${payoutTtlSeconds} s: whoever holds it chooses where the money goes`,
        },
      ]);
    }
    const ttl = expiresInSeconds ?? (payout ? payoutTtlSeconds : defaultTtlSeconds);
    // Issued, as revoked, by the database's clock: a revocation on a host whose clock is behind this
    // one's still ends the links issued before it.
    const issuedAt = await databaseNow(em);
    const expiresAt = new Date(issuedAt.getTime() + ttl * 1000);
    const token = await issuePaymentLink(
      this.keys,
      { tenantId, orderRef: order.orderRef, instructionRef, instructionId: instruction.instructionId },
      expiresAt,
      issuedAt,
    );
    // Who issued it and until when; never the token, which is the link.
    recordAudit(em, actor, {
      action: 'payment-link.issue',
      targetType: 'instruction',
      targetId: instruction.instructionId,
      details: { orderRef, instructionRef, expiresAt: expiresAt.toISOString() },
    });
    await em.flush();
    return { url: `${publicApiUrl}/pay/${token}`, expiresAt };
  }

  /** Ends every link to the instruction issued until now, and records who did. */
  async revoke(em: EntityManager, actor: Principal, tenantId: string, orderRef: string, instructionRef: string) {
    const order = await this.orders.findOrder(em, tenantId, orderRef);
    const instruction = await this.orders.findInstruction(em, order, instructionRef);
    // Never moved back: of two revocations at once, the earlier committing last must not revive the
    // links issued between them.
    await em.getConnection().execute(
      `insert into payment_link_revocation (instruction_id, tenant_id, revoked_at) values (?, ?, clock_timestamp())
         on conflict (instruction_id) do update
           set revoked_at = greatest(payment_link_revocation.revoked_at, excluded.revoked_at)`,
      [instruction.instructionId, tenantId],
      'run',
      em.getTransactionContext(),
    );
    recordAudit(em, actor, {
      action: 'payment-link.revoke',
      targetType: 'instruction',
      targetId: instruction.instructionId,
      details: { orderRef, instructionRef },
    });
  }

  /** What a link names, if it is genuine, unexpired and not revoked. */
  async open(em: EntityManager, token: string): Promise<LinkOpening> {
    const check = await verifyPaymentLink(this.keys, token);
    if (!check.valid) return check;
    const revocation = await em.findOne(PaymentLinkRevocation, {
      instructionId: check.claims.instructionId,
      tenantId: check.claims.tenantId,
    });
    if (revocation && revocation.revokedAt.getTime() >= check.issuedAtMs) return { valid: false, reason: 'revoked' };
    return { valid: true, claims: check.claims };
  }
}
