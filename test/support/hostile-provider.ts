import { randomInt, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { passesLuhn } from '../../domain/card-number.js';

/** A charge the provider took: what tests count to prove a payment was made at most once. */
export interface Charge {
  idempotencyKey: string;
  providerRef: string;
  /** What it was asked to charge: a test name, or a token of its hosted form. */
  instrument?: string;
  orderRef: string;
  instructionRef: string;
  amountMinor: string;
  status: 'SETTLED' | 'PENDING' | 'DECLINED';
}

/** A refund the provider made: at most one per idempotency key. */
export interface MadeRefund {
  idempotencyKey: string;
  providerRef: string;
  paymentRef: string;
  amountMinor: string;
}

/** One request as the provider saw it, in order of arrival. */
export interface SeenRequest {
  method: string;
  path: string;
  idempotencyKey?: string;
  verified: boolean;
}

/**
 * How the provider misbehaves; each scenario a test sets (and may change between steps). Unset,
 * it is a well-behaved HTTP_CONNECTOR provider (README, "Your own provider").
 */
export interface Behaviour {
  /** How many of the next payment calls it answers never (taking the payment if it is new): held until the client gives up. */
  loseAnswers?: number;
  /** Payments it neither takes nor answers (it hangs before charging, holding the key). */
  hangWithoutCharging?: number;
  /** How a payment (or a refund) under a key it has seen (taken or held) is answered: itself again, or a 409 "key in use". */
  repeatedKey?: 'answer' | 409;
  /** How a look-up is answered: the payment (or "payment_not_found"), or a status of a provider that cannot tell. */
  lookup?: 'answer' | 404 | 405 | 501 | 400;
  /** The status of each new payment. */
  outcome?: 'SETTLED' | 'PENDING' | { declined: string; retryable: boolean };
  /** Fields of its answers replaced as they are (an over-long reference, a wrongly typed status…). */
  answerOverrides?: Record<string, unknown>;
  /** Bytes of padding streamed in each answer's body. */
  padAnswersWith?: number;
  /** Takes every payment call and answers none, for as long as the client waits (a slow, or hostile, provider). */
  holdEverything?: boolean;
  /** Answers a new payment (taken at once) once this settles: its call is under way meanwhile. */
  holdPaymentAnswers?: Promise<void>;
  /** Answers a payment's or a refund's status (GET /payments/{ref}, /refunds/{ref}) once this settles, as it is then. */
  holdStatusAnswers?: Promise<void>;
  /** Answers a look-up by key (GET /payments?idempotencyKey=) once this settles, as the provider then stands. */
  holdLookupAnswers?: Promise<void>;
  /** Refuses to say a payment's or a refund's status (GET /payments/{ref}, /refunds/{ref}): 404, as if it knew no such reference. */
  refuseStatus?: boolean;
  /** How many of the next refund calls it answers never (making the refund if it is new). */
  loseRefundAnswers?: number;
  /** Takes every refund call and answers none, making no refund, for as long as the client waits. */
  holdRefunds?: boolean;
  /** Answers a refund call (the refund made at once) once this settles: its call is under way meanwhile. */
  holdRefundAnswers?: Promise<void>;
  /** What its refunds are, when made and when asked about (GET /refunds/{ref}): SUCCEEDED unless set. */
  refundOutcome?: 'SUCCEEDED' | 'PENDING' | 'FAILED';
  /** Its payments' references are 16 digits passing the Luhn check, as some providers' are (`own_<uuid>` unless set). */
  numericRefs?: boolean;
  /** How its hosted form's exchange answers: as it should, with a card number in it, or its form on another origin. */
  hostedForm?: 'answer' | 'card-number-in-answer' | 'iban-in-answer' | 'account-number-in-answer' | 'other-origin';
}

export interface HostileProvider {
  /** Its base URL: the HTTP_CONNECTOR installation's `url`. */
  url: string;
  secret: string;
  behaviour: Behaviour;
  charges: Charge[];
  refunds: MadeRefund[];
  requests: SeenRequest[];
  /** Tokens its hosted form gave out, in order. */
  tokens: string[];
  /** Keys it was asked about (GET /payments?idempotencyKey=), in order. */
  lookups: string[];
  /** Of each padded answer, how many bytes of padding it had written when the connection closed. */
  paddingSent: number[];
  /** When each call it held (holdEverything, holdPaymentAnswers) was given up by the client (epoch ms), in order. */
  released: number[];
  /** A callback for one of its payments (or anything else), signed with its secret, POSTed to `callbackUrl`. */
  callBack(callbackUrl: string, body: Record<string, unknown>, options?: { secret?: string }): Promise<Response>;
  close(): Promise<void>;
}

/** A tenant's own provider on loopback, speaking HTTP_CONNECTOR, told how to misbehave. */
export async function startHostileProvider(behaviour: Behaviour = {}): Promise<HostileProvider> {
  const secret = `whsec_${Buffer.from(randomUUID() + randomUUID()).toString('base64')}`;
  const webhook = new Webhook(secret.replace(/^whsec_/, ''));
  const charges: Charge[] = [];
  const refunds: MadeRefund[] = [];
  const requests: SeenRequest[] = [];
  const lookups: string[] = [];
  const paddingSent: number[] = [];
  const released: number[] = [];
  const tokens: string[] = [];
  /** Its hosted forms: the merchant's return address, and the reference and token once "filled in". */
  const sessions = new Map<string, { returnUrl: string; ref?: string; token?: string; exchanged?: boolean }>();
  const held = new Set<ServerResponse>();
  /** Keys of payments it hung on without charging: still "in use" to it. */
  const heldKeys = new Set<string>();
  const provider: HostileProvider = {
    url: '',
    secret,
    behaviour,
    charges,
    refunds,
    requests,
    lookups,
    paddingSent,
    released,
    tokens,
    async callBack(callbackUrl, body, options = {}) {
      const signer = options.secret ? new Webhook(options.secret.replace(/^whsec_/, '')) : webhook;
      const raw = JSON.stringify(body);
      const id = `msg_${randomUUID()}`;
      const at = new Date();
      return fetch(callbackUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'webhook-id': id,
          'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
          'webhook-signature': signer.sign(id, at, raw),
        },
        body: raw,
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of held) res.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };

  const answer = (res: ServerResponse, status: number, body: Record<string, unknown>) => {
    const { padAnswersWith = 0, answerOverrides = {} } = provider.behaviour;
    const json = JSON.stringify({ ...body, ...(status < 300 ? answerOverrides : {}) });
    res.writeHead(status, { 'content-type': 'application/json' });
    if (padAnswersWith === 0) return void res.end(json);
    // A body that does not end: padding, streamed, before the JSON ever closes.
    res.write(`${json.slice(0, -1)}, "padding": "`);
    const chunk = 'x'.repeat(64 * 1024);
    let sent = 0;
    const pump = () => {
      while (sent < padAnswersWith) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end('"}');
    };
    res.on('error', () => undefined);
    res.once('close', () => paddingSent.push(sent));
    pump();
  };
  const paymentOf = (charge: Charge) => {
    const { outcome } = provider.behaviour;
    return {
      providerRef: charge.providerRef,
      status: charge.status,
      ...(typeof outcome === 'object' ? { declineCode: outcome.declined, retryable: outcome.retryable } : {}),
    };
  };

  const server: Server = createServer((req: IncomingMessage, res) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    req.on('end', () => {
      const path = (req.url ?? '').replace(/^\/own/, '');
      // The customer's browser on its hosted form (unsigned): a form filled in at once, the customer sent back.
      const hosted = /^\/hosted\/([^/?]+)$/.exec(path);
      if (req.method === 'GET' && hosted) {
        const session = sessions.get(hosted[1]);
        if (!session) return answer(res, 404, { error: 'not_found' });
        session.ref = `ref_${randomUUID()}`;
        session.token = `own_tok_${randomUUID().replaceAll('-', '')}`;
        tokens.push(session.token);
        const back = new URL(session.returnUrl);
        back.searchParams.set('session', hosted[1]);
        back.searchParams.set('ref', session.ref);
        res.writeHead(303, { location: back.toString() });
        return void res.end();
      }
      let verified = true;
      try {
        webhook.verify(raw, req.headers as Record<string, string>);
      } catch {
        verified = false;
      }
      const key = req.headers['idempotency-key'] as string | undefined;
      requests.push({ method: req.method ?? '', path, idempotencyKey: key, verified });
      const b = provider.behaviour;
      if (!verified) return answer(res, 401, { error: 'invalid_signature' });

      if (req.method === 'POST' && path === '/payments' && key && b.holdEverything) {
        held.add(res);
        res.once('close', () => released.push(Date.now()));
        return;
      }
      if (req.method === 'POST' && path === '/payments' && key) {
        const existing = charges.find((c) => c.idempotencyKey === key);
        if (existing || heldKeys.has(key)) {
          if (b.repeatedKey === 409) return answer(res, 409, { error: 'key_in_use' });
          if (existing && (b.loseAnswers ?? 0) > 0) {
            b.loseAnswers! -= 1;
            held.add(res);
            return;
          }
          if (existing) return answer(res, 200, paymentOf(existing));
        }
        if ((b.hangWithoutCharging ?? 0) > 0) {
          b.hangWithoutCharging! -= 1;
          heldKeys.add(key);
          held.add(res);
          return;
        }
        const body = JSON.parse(raw) as {
          reference: { orderRef: string; instructionRef: string };
          amountMinor: string;
          instrument?: string;
        };
        const status = b.outcome === 'PENDING' ? 'PENDING' : typeof b.outcome === 'object' ? 'DECLINED' : 'SETTLED';
        const charge: Charge = {
          idempotencyKey: key,
          providerRef: b.numericRefs ? numericRefPassingLuhn() : `own_${randomUUID()}`,
          orderRef: body.reference.orderRef,
          instructionRef: body.reference.instructionRef,
          amountMinor: body.amountMinor,
          ...(body.instrument ? { instrument: body.instrument } : {}),
          status,
        };
        charges.push(charge);
        if ((b.loseAnswers ?? 0) > 0) {
          b.loseAnswers! -= 1;
          held.add(res);
          return;
        }
        if (b.holdPaymentAnswers) {
          // A held call its client gave up before the answer came.
          res.once('close', () => res.writableEnded || released.push(Date.now()));
          return void b.holdPaymentAnswers.then(() => answer(res, 201, paymentOf(charge)));
        }
        return answer(res, 201, paymentOf(charge));
      }

      if (req.method === 'POST' && path === '/hosted-sessions') {
        const { returnUrl } = JSON.parse(raw) as { returnUrl: string };
        const id = `hs_${randomUUID()}`;
        sessions.set(id, { returnUrl });
        const origin = b.hostedForm === 'other-origin' ? 'http://127.0.0.2:1' : new URL(provider.url).origin;
        return answer(res, 201, { id, url: `${origin}/own/hosted/${id}` });
      }
      const exchange = /^\/hosted-sessions\/([^/]+)\/exchange$/.exec(path);
      if (req.method === 'POST' && exchange) {
        const session = sessions.get(decodeURIComponent(exchange[1]));
        const { ref } = JSON.parse(raw) as { ref: string };
        if (!session?.ref || session.ref !== ref) return answer(res, 404, { error: 'not_found' });
        if (session.exchanged) return answer(res, 409, { error: 'already_exchanged' });
        session.exchanged = true;
        return answer(res, 200, {
          token: session.token,
          paymentMethod: 'CARD',
          display: {
            brand: 'visa',
            last4: '1111',
            ...(b.hostedForm === 'card-number-in-answer' ? { holderName: 'card 4111 1111 1111 1111' } : {}),
            // A "masked" IBAN that is not masked.
            ...(b.hostedForm === 'iban-in-answer' ? { maskedIban: 'DE89 3704 0044 0532 0130 00' } : {}),
            ...(b.hostedForm === 'account-number-in-answer' ? { maskedIban: '370400440532013000' } : {}),
          },
        });
      }

      if (req.method === 'POST' && path === '/refunds' && key && b.holdRefunds) {
        held.add(res);
        return;
      }
      if (req.method === 'POST' && path === '/refunds' && key) {
        const refundOf = (r: MadeRefund) => ({ providerRef: r.providerRef, status: b.refundOutcome ?? 'SUCCEEDED' });
        let refund = refunds.find((r) => r.idempotencyKey === key);
        if (refund && b.repeatedKey === 409) return answer(res, 409, { error: 'key_in_use' });
        const made = refund === undefined;
        if (!refund) {
          const body = JSON.parse(raw) as { paymentRef: string; amountMinor: string };
          refund = {
            idempotencyKey: key,
            providerRef: `ownr_${randomUUID()}`,
            paymentRef: body.paymentRef,
            amountMinor: body.amountMinor,
          };
          refunds.push(refund);
        }
        if ((b.loseRefundAnswers ?? 0) > 0) {
          b.loseRefundAnswers! -= 1;
          held.add(res);
          return;
        }
        const answered = refundOf(refund);
        if (b.holdRefundAnswers) return void b.holdRefundAnswers.then(() => answer(res, made ? 201 : 200, answered));
        return answer(res, made ? 201 : 200, answered);
      }

      const refundStatus = /^\/refunds\/([^/?]+)$/.exec(path);
      if (req.method === 'GET' && refundStatus && b.refuseStatus)
        return answer(res, 404, { error: 'refund_not_found' });
      if (req.method === 'GET' && refundStatus) {
        const answerStatus = () => {
          const found = refunds.find((r) => r.providerRef === decodeURIComponent(refundStatus[1]));
          if (!found) return answer(res, 404, { error: 'refund_not_found' });
          return answer(res, 200, { providerRef: found.providerRef, status: b.refundOutcome ?? 'SUCCEEDED' });
        };
        if (b.holdStatusAnswers) return void b.holdStatusAnswers.then(answerStatus);
        return answerStatus();
      }

      const lookup = /^\/payments\?idempotencyKey=(.+)$/.exec(path);
      if (req.method === 'GET' && lookup) {
        const asked = decodeURIComponent(lookup[1]);
        lookups.push(asked);
        const mode = b.lookup ?? 'answer';
        if (mode !== 'answer') return answer(res, mode, { error: mode === 404 ? 'no_such_route' : 'unsupported' });
        const answerLookup = () => {
          const found = charges.find((c) => c.idempotencyKey === asked);
          return found ? answer(res, 200, paymentOf(found)) : answer(res, 404, { error: 'payment_not_found' });
        };
        if (b.holdLookupAnswers) return void b.holdLookupAnswers.then(answerLookup);
        return answerLookup();
      }

      const status = /^\/payments\/([^/?]+)$/.exec(path);
      if (req.method === 'GET' && status && b.refuseStatus) return answer(res, 404, { error: 'payment_not_found' });
      if (req.method === 'GET' && status) {
        const answerStatus = () => {
          const found = charges.find((c) => c.providerRef === decodeURIComponent(status[1]));
          return found ? answer(res, 200, paymentOf(found)) : answer(res, 404, { error: 'payment_not_found' });
        };
        if (b.holdStatusAnswers) return void b.holdStatusAnswers.then(answerStatus);
        return answerStatus();
      }
      answer(res, 404, { error: 'no_such_route' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  provider.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/own`;
  return provider;
}

/** A 16-digit reference starting with 88, its last digit the Luhn check digit: shaped like a card number. */
function numericRefPassingLuhn(): string {
  const body = `88${randomInt(10 ** 12, 10 ** 13)}`;
  for (let check = 0; check <= 9; check++) if (passesLuhn(`${body}${check}`)) return `${body}${check}`;
  throw new Error('no check digit');
}
