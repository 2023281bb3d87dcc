import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { AuditEntry } from '../../db/entities/index.js';
import type { Principal } from '../auth/principal.js';

export interface AuditedChange {
  action: string;
  targetType: string;
  targetId: string;
  tenantId?: string | null;
  details?: Record<string, unknown>;
}

/** Adds an audit entry to `em`, so it commits (or not) with what `em` flushes with it. Never pass secrets in details. */
export function recordAudit(em: EntityManager, actor: Principal, change: AuditedChange): AuditEntry {
  return em.create(AuditEntry, {
    id: randomUUID(),
    accountId: actor.accountId,
    tenantId: change.tenantId ?? actor.tenantId ?? null,
    actorKey: actor.publicKey,
    action: change.action,
    targetType: change.targetType,
    targetId: change.targetId,
    details: change.details ?? {},
    createdAt: new Date(),
  });
}
