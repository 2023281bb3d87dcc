import { randomUUID } from 'node:crypto';
import express, { type Express } from 'express';
import { SANDBOX_TEST_INSTRUMENTS, type SandboxInstrument } from './outcomes.js';

interface SandboxPayment {
  id: string;
  idempotencyKey: string;
  requestBody: string;
  direction: string;
  amountMinor: string;
  currency: string;
  instrument: string;
  status: 'SETTLED' | 'DECLINED';
  declineCode?: string;
  retryable?: boolean;
  createdAt: string;
}

/**
 * A payment service provider that behaves like a real one over HTTP: it honours idempotency keys
 * (same key and body → the first answer, same key and another body → 422) and chooses outcomes by
 * test instrument. State is in memory: a restart forgets every payment, as a sandbox may.
 */
export function createSandboxApp(): Express {
  const app = express();
  app.use(express.json());
  const byKey = new Map<string, SandboxPayment>();
  const failedOnce = new Set<string>();

  app.post('/v1/payments', (req, res) => {
    const key = req.header('idempotency-key');
    if (!key) {
      res.status(400).json({ error: 'idempotency_key_required' });
      return;
    }
    const { direction, amountMinor, currency, instrument } = (req.body ?? {}) as Record<string, string | undefined>;
    if (!direction || !['DEBIT', 'CREDIT'].includes(direction) || !/^\d+$/.test(String(amountMinor)) || !currency || !instrument) {
      res.status(400).json({ error: 'invalid_request' });
      return;
    }
    const requestBody = JSON.stringify({ direction, amountMinor, currency, instrument });
    const existing = byKey.get(key);
    if (existing) {
      if (existing.requestBody !== requestBody) {
        res.status(422).json({ error: 'idempotency_key_reused' });
        return;
      }
      res.status(200).json(present(existing));
      return;
    }
    const rule = SANDBOX_TEST_INSTRUMENTS[instrument as SandboxInstrument];
    if (rule?.kind === 'fail-first-attempt' && !failedOnce.has(key)) {
      failedOnce.add(key);
      res.status(503).json({ error: 'temporarily_unavailable' });
      return;
    }
    const payment: SandboxPayment = {
      id: `sbx_${randomUUID()}`,
      idempotencyKey: key,
      requestBody,
      direction,
      amountMinor: String(amountMinor),
      currency,
      instrument,
      status: rule?.kind === 'decline' ? 'DECLINED' : 'SETTLED',
      ...(rule?.kind === 'decline' ? { declineCode: rule.code, retryable: rule.retryable } : {}),
      createdAt: new Date().toISOString(),
    };
    byKey.set(key, payment);
    res.status(201).json(present(payment));
  });

  app.get('/v1/payments', (req, res) => {
    const key = req.query.idempotencyKeyPrefix;
    const items = [...byKey.values()].filter((p) => typeof key !== 'string' || p.idempotencyKey.startsWith(key));
    res.json({ items: items.map(present) });
  });

  app.get('/v1/payments/:id', (req, res) => {
    const payment = [...byKey.values()].find((p) => p.id === req.params.id);
    if (!payment) {
      res.status(404).json({ error: 'not_found' });
      return;
    }
    res.json(present(payment));
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  return app;
}

function present(payment: SandboxPayment) {
  const { requestBody: _requestBody, ...visible } = payment;
  return visible;
}
