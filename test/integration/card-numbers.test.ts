// No card number ever reaches us (ARCHITECTURE.md, "Money, dates, references"): one sent to any route,
// in its path, its query or its body, is a 400 `card_number_not_allowed` naming where it was, and it
// is found afterwards in no log line and no table. Nor does a bank account number (an IBAN).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { holdsBankAccountNumber, maskBankAccountNumbers } from '../../domain/bank-account-number.js';
import { cardNumbersIn, maskCardNumbers, passesLuhn } from '../../domain/card-number.js';
import { eventually } from '../support/eventually.js';
import { post, visit } from '../support/pay-page-client.js';
import { startSystem, type TenantFixture, type TestSystem } from '../support/system.js';

let system: TestSystem;
let tenant: TenantFixture;

beforeAll(async () => {
  system = await startSystem();
  tenant = await system.newTenant();
});
afterAll(async () => {
  await system?.close();
});

// Test numbers of the card schemes: Visa, Mastercard, Amex (15 digits), Visa written with spaces and dashes.
const CARDS = ['4242424242424242', '5555555555554444', '378282246310005', '4000 0566 5566 5556', '4111-1111-1111-1111'];
const digits = (card: string) => card.replace(/[ -]/g, '');

describe('what looks like a card number', () => {
  it('is 13 to 19 digits passing the Luhn check, spaces or dashes allowed, anywhere in a text', () => {
    for (const card of CARDS) expect(cardNumbersIn(`paid with ${card} yesterday`), card).toEqual([card]);
    expect(passesLuhn('4242424242424241')).toBe(false);
    expect(cardNumbersIn('4242424242424241')).toEqual([]);
    // Too short, too long, or part of a longer run of digits.
    expect(cardNumbersIn('424242424242')).toEqual([]);
    expect(cardNumbersIn('42424242424242424242424')).toEqual([]);
    // A UUID is no card, though its last two groups here read as a dashed number passing the Luhn check.
    const uuid = '12345678-1234-4234-8234-123456789008';
    expect(passesLuhn('8234123456789008')).toBe(true);
    expect(cardNumbersIn(uuid)).toEqual([]);
    expect(maskCardNumbers(`/v1/webhooks/endpoints/${uuid}`)).toBe(`/v1/webhooks/endpoints/${uuid}`);
    expect(maskCardNumbers(`${uuid} 4242424242424242`)).toBe(`${uuid} [card number]`);
    // References and dates are not cards.
    expect(cardNumbersIn('order-2027-01-31 premium-12 9f1c2e0a-7d4b-4c1e-9a55-0b6f3e2d1c4a')).toEqual([]);
    expect(maskCardNumbers('GET /v1/x/4242424242424242?y=1')).toBe('GET /v1/x/[card number]?y=1');
    // Followed by other digits after a space (a status code): the run as a whole fails the check, but holds a card.
    expect(maskCardNumbers('GET /v1/x/4242424242424242 400')).toBe('GET /v1/x/[card number]');
    expect(cardNumbersIn('card 4242 4242 4242 4242 12')).toEqual(['4242 4242 4242 4242 12']);
    expect(cardNumbersIn('call 0800 123 4567 or 0800 765 4321')).toEqual([]);
    expect(maskCardNumbers('?note=4000%200566%205566%205556&a=4111+1111+1111+1111')).toBe(
      '?note=[card number]&a=[card number]',
    );
    // A card number after other digits in a longer run, or padded with zeros, is one.
    expect(cardNumbersIn('on 2024 4242 4242 4242 4242')).toEqual(['2024 4242 4242 4242 4242']);
    expect(cardNumbersIn('paid with 00004242424242424242')).toEqual(['00004242424242424242']);
    expect(maskCardNumbers('GET /x?ref=2024-4242-4242-4242-4242')).toBe('GET /x?ref=[card number]');
    // Numbers starting with 1 are cards only at UATP's 15 digits (an airline card, passing the check).
    expect(cardNumbersIn('paid with 135410014004955')).toEqual(['135410014004955']);
    expect(cardNumbersIn('paid with 000135410014004955')).toEqual(['000135410014004955']);
    // Other lengths from a 1 are no card, though they pass the check: times in milliseconds (13 digits),
    // microseconds (16) and nanoseconds (19), a snowflake id (19); nor is a zero-padded counter of
    // fewer than 13 digits.
    const notCards = [
      '1764504000126',
      '17645040001268',
      '1764504000126008',
      '1764504000126000000',
      '1864912458671234560',
      '0000000000042',
      '0000000000000000042',
      // References stamped with a date and time, then a counter: from 20 or 21, no card but 15 digits long.
      '2026120403374806',
      '21001231235959125',
      '2026120403374812349',
    ];
    for (const notCard of notCards) {
      expect(passesLuhn(notCard.replace(/^0+/, '')), notCard).toBe(true);
      expect(cardNumbersIn(`ref ${notCard}`), notCard).toEqual([]);
      expect(maskCardNumbers(`{"time":${notCard},"msg":"ref ${notCard}"}`)).toBe(
        `{"time":${notCard},"msg":"ref ${notCard}"}`,
      );
    }
    // From 20 and 21 the 15 digits of JCB's old numbers (2131) are cards, so a 15-digit stamp is still taken for one.
    expect(cardNumbersIn('paid with 213112345678904')).toEqual(['213112345678904']);
    expect(cardNumbersIn('ref 202612041200005')).toEqual(['202612041200005']);
    // A card after such a number in a run of groups is still found.
    expect(cardNumbersIn('at 1764504000126008 4242 4242 4242 4242')).toEqual(['1764504000126008 4242 4242 4242 4242']);
    // One written as a JSON number is replaced by a string, so that the line stays JSON.
    expect(maskCardNumbers('{"note":4242424242424242}')).toBe('{"note":"[card number]"}');
    expect(maskCardNumbers('{"msg":"4242424242424242"}')).toBe('{"msg":"[card number]"}');
    // However long a run of digit groups, it is read in proportion to its length (a reading of every
    // window of groups would not finish here).
    expect(cardNumbersIn('0 '.repeat(200_000))).toEqual([]);
    expect(maskCardNumbers('0-'.repeat(200_000))).toBe('0-'.repeat(200_000));
  });
});

/**
 * Sends `written` to every route, in its path, a query value, the Idempotency-Key header and the
 * body's metadata (each written its own way), and expects each refused with `code`, naming where,
 * and never echoed.
 */
async function refusedOnEveryRoute(written: { path: string; query: string; body: string }, code: string) {
  const checked: string[] = [];
  for (const route of system.api.routes) {
    const method = route.method.toUpperCase();
    const withParams = (value: string) => `/v1${route.path.replace(/:(\w+)/g, () => encodeURIComponent(value))}`;
    const attempts: { where: string; path: string; body?: unknown; headers?: Record<string, string> }[] = [];
    if (route.path.includes(':')) attempts.push({ where: 'path', path: withParams(written.path) });
    attempts.push({ where: 'query.note', path: `${withParams('x')}?note=${encodeURIComponent(written.query)}` });
    // Stored with its answer, and the id of an order's update in its workflow's history.
    attempts.push({
      where: 'headers.idempotency-key',
      path: withParams('x'),
      headers: { 'idempotency-key': `retry of ${written.query}` },
    });
    if (method !== 'GET' && method !== 'DELETE')
      attempts.push({ where: 'metadata.note', path: withParams('x'), body: { metadata: { note: written.body } } });
    for (const attempt of attempts) {
      const res = await tenant.client.request(method, attempt.path, {
        ...(attempt.body ? { body: attempt.body } : {}),
        ...(attempt.headers ? { headers: attempt.headers } : {}),
      });
      const what = `${method} ${route.path} (${attempt.where})`;
      expect(res.status, `${what}: ${JSON.stringify(res.body)}`).toBe(400);
      expect(res.body.code, what).toBe(code);
      expect(res.body.errors[0].path, what).toBe(attempt.where);
      expect(JSON.stringify(res.body), what).not.toContain(written.path.slice(0, 8));
      checked.push(what);
    }
  }
  expect(checked.length).toBeGreaterThan(system.api.routes.length * 3);
}

/** Whether any table holds any of `values` in any of its columns. */
async function tablesHolding(values: string[]): Promise<string[]> {
  const connection = system.orm.em.getConnection();
  const tables: { table_name: string }[] = await connection.execute(
    `select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'`,
  );
  expect(tables.length).toBeGreaterThan(10);
  const holding: string[] = [];
  for (const { table_name } of tables) {
    for (const value of values) {
      const [{ count }]: { count: string }[] = await connection.execute(
        `select count(*) as count from "${table_name}" t where t::text like ?`,
        [`%${value}%`],
      );
      if (Number(count) > 0) holding.push(`${table_name} holds ${value}`);
    }
  }
  return holding;
}

describe('a card number sent to the API', () => {
  it('is refused on every route, in the path, the query, the Idempotency-Key and the body, naming where', async () => {
    await refusedOnEveryRoute({ path: CARDS[0], query: CARDS[3], body: `card ${CARDS[4]}` }, 'card_number_not_allowed');
  });

  it('is refused as a JSON number, and as an object key', async () => {
    const asNumber = await tenant.client.request('POST', '/v1/order-management', {
      body: { orderRef: 'o', instructions: [], metadata: { note: 4242424242424242 } },
    });
    expect(asNumber.body).toMatchObject({ code: 'card_number_not_allowed', errors: [{ path: 'metadata.note' }] });
    const asKey = await tenant.client.request('POST', '/v1/order-management', {
      body: { orderRef: 'o', instructions: [], metadata: { '5555 5555 5555 4444': 'x' } },
    });
    // Named by the object holding it, so that the answer does not repeat the number.
    expect(asKey.body).toMatchObject({ code: 'card_number_not_allowed', errors: [{ path: 'metadata' }] });
    // Two groups, not one: the answer's requestId (a UUID) may hold "5555" by chance.
    expect(JSON.stringify(asKey.body)).not.toMatch(/5555 5555|55555555|5555 4444/);
  });

  it('is not a time nor a snowflake id from a 1, nor a date-stamped reference from 20, nor a zero-padded counter, which may be references and keys', async () => {
    const orderRef = '1764504000126';
    const key = '1864912458671234560';
    expect(passesLuhn(orderRef) && passesLuhn(key)).toBe(true);
    const res = await tenant.client.request('POST', '/v1/order-management', {
      headers: { 'idempotency-key': key },
      body: {
        orderRef,
        instructions: [
          {
            instructionRef: '0000000000042',
            direction: 'DEBIT',
            amount: '5.00',
            currency: 'EUR',
            country: 'FR',
            openDate: '2031-01-01',
            dueDate: '2031-01-05',
          },
        ],
        metadata: { sentAt: '1764504000126008', batch: '2026120403374806' },
      },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body.orderRef).toBe(orderRef);
    expect(res.body.metadata).toEqual({ sentAt: '1764504000126008', batch: '2026120403374806' });
  });

  it('is taken as a body’s own providerRef when it is digits alone: a provider’s numeric reference', async () => {
    const path = '/v1/order-management/no-such-order/instructions/a/resolve';
    const ref = '8815329842815467';
    expect(passesLuhn(ref)).toBe(true);
    // Past the door: the resolution is refused only for naming no order.
    const taken = await tenant.client.request('POST', path, {
      body: { outcome: 'SETTLED', providerRef: ref, note: 'n' },
    });
    expect(taken.status, JSON.stringify(taken.body)).toBe(404);
    // Written as a card is, anywhere else, or in a JSON number, it is refused.
    for (const body of [
      { outcome: 'SETTLED', providerRef: '8815 3298 4281 5467', note: 'n' },
      { outcome: 'SETTLED', providerRef: `ref ${ref}`, note: 'n' },
      { outcome: 'SETTLED', providerRef: 'p', note: ref },
      { outcome: 'SETTLED', providerRef: Number(ref), note: 'n' },
      { outcome: 'SETTLED', providerRef: 'p', note: 'n', metadata: { providerRef: ref } },
    ]) {
      const res = await tenant.client.request('POST', path, { body });
      expect(res.body.code, JSON.stringify(body)).toBe('card_number_not_allowed');
    }
  });

  it('is refused by the payment page, typed into any of its fields, and charged nowhere', async () => {
    const now = Date.now();
    const order = await tenant.client.request('POST', '/v1/order-management', {
      body: {
        orderRef: 'page-card-number',
        instructions: [
          {
            instructionRef: 'a',
            direction: 'DEBIT',
            amount: '5.00',
            currency: 'EUR',
            country: 'FR',
            openDate: new Date(now - 1000).toISOString(),
            dueDate: new Date(now + 86_400_000).toISOString(),
          },
        ],
      },
    });
    expect(order.status).toBe(202);
    await eventually(
      async () => (await tenant.client.request('GET', '/v1/order-management/page-card-number')).body.instructions[0],
      (i) => i.status === 'OPEN',
      { what: 'open' },
    );
    const link = await tenant.client.request(
      'POST',
      '/v1/order-management/page-card-number/instructions/a/payment-link',
      {
        body: {},
      },
    );
    const page = await visit(link.body.url);
    for (const field of ['instrument:SANDBOX_CARD:CARD', 'voucherId', 'note']) {
      const res = await post(
        link.body.url,
        { option: 'SANDBOX_CARD:CARD', [field]: CARDS[3], csrf: page.csrf!, form: page.form! },
        page.cookie,
      );
      expect(res.status, field).toBe(400);
      expect(await res.text()).toContain('Do not type a card number here');
    }
    // Nor a bank account's number.
    const iban = 'NL91 ABNA 0417 1643 00';
    const typed = await post(
      link.body.url,
      { option: 'SANDBOX_CARD:CARD', note: iban, csrf: page.csrf!, form: page.form! },
      page.cookie,
    );
    expect(typed.status).toBe(400);
    expect(await typed.text()).toContain('Do not type a bank account number here');
    expect(await system.sandbox.ledger({ tenantId: tenant.tenantId, orderRef: 'page-card-number' })).toEqual([]);
  });

  it('is then in no log line and no table', async () => {
    const logs = system.logLines.join('\n');
    for (const card of CARDS) {
      expect(logs.includes(card) || logs.includes(digits(card)), card).toBe(false);
      expect(logs.includes(encodeURIComponent(card)), card).toBe(false);
    }
    expect(await tablesHolding([...CARDS, ...CARDS.map(digits)])).toEqual([]);
  });
});

describe('a secret key sent as free text', () => {
  const SECRETS = [
    'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    'sk_live_51HqLyjWDarjtT1zdp7dc',
    'rk_test_4eC39HqLyjWDarjtT1zdp7dc',
  ];

  it('is refused in a name, a description, metadata and its keys, naming the field, never echoed, and kept nowhere', async () => {
    const [signing, secretKey, restricted] = SECRETS;
    const instruction = {
      instructionRef: 'a',
      direction: 'DEBIT',
      amount: '5.00',
      currency: 'EUR',
      country: 'FR',
      openDate: '2027-01-01',
      dueDate: '2027-01-01',
    };
    const attempts: { path: string; body: Record<string, unknown>; field: string }[] = [
      {
        path: '/v1/order-management',
        body: { orderRef: 'secret-1', instructions: [instruction], metadata: { note: `key ${secretKey}` } },
        field: 'metadata.note',
      },
      {
        path: '/v1/order-management',
        body: { orderRef: 'secret-2', instructions: [instruction], metadata: { [restricted]: 'x' } },
        field: 'metadata',
      },
      { path: '/v1/customers', body: { customerRef: 'secret-3', name: `Acme ${restricted}` }, field: 'name' },
      {
        path: '/v1/webhooks/endpoints',
        body: { url: 'https://hooks.example.com/x', description: `signed with ${signing}` },
        field: 'description',
      },
    ];
    for (const { path, body, field } of attempts) {
      const res = await tenant.client.request('POST', path, { body });
      expect(res.status, `${path}: ${JSON.stringify(res.body)}`).toBe(400);
      expect(res.body).toMatchObject({
        code: 'validation_failed',
        errors: [{ path: field, code: 'secret_key_not_allowed' }],
      });
      for (const secret of SECRETS) expect(JSON.stringify(res.body), path).not.toContain(secret.slice(0, 12));
    }
    expect((await tenant.client.request('GET', '/v1/order-management/secret-1')).status).toBe(404);
    expect((await tenant.client.request('GET', '/v1/customers/secret-3')).status).toBe(404);
    expect(await tablesHolding(SECRETS)).toEqual([]);
    const logs = system.logLines.join('\n');
    for (const secret of SECRETS) expect(logs.includes(secret), secret).toBe(false);
  });
});

// Test IBANs (German, Dutch, British), written as printed and as sent between banks.
const IBANS = ['DE89 3704 0044 0532 0130 00', 'NL91 ABNA 0417 1643 00', 'GB82 WEST 1234 5698 7654 32'];
const compact = (iban: string) => iban.replace(/ /g, '');

describe('a bank account number sent to the API', () => {
  it('is an IBAN with valid check digits, in groups of four or none, in one case, anywhere in a text; not words like one', () => {
    for (const iban of IBANS) expect(holdsBankAccountNumber(`pay to ${iban.toLowerCase()}, thanks`), iban).toBe(true);
    // Copied from a page: no-break spaces between its groups.
    expect(holdsBankAccountNumber(IBANS[0].replace(/ /g, '\u00a0'))).toBe(true);
    // Printed with dots or slashes between its groups, as some banks and forms print it.
    for (const separator of ['.', '/'])
      expect(holdsBankAccountNumber(`to ${IBANS[2].replace(/ /g, separator)}.`), separator).toBe(true);
    // One that begins inside the run of another candidate is found too.
    expect(holdsBankAccountNumber(`ref AB12 ${IBANS[0]}`)).toBe(true);
    // A wrong check digit, more characters than its country's, a reference, an id: none is one.
    for (const text of [
      'DE88 3704 0044 0532 0130 00',
      'DE88.3704.0044.0532.0130.00',
      `${compact(IBANS[0])}1`,
      'INV-2027-000123',
      '3f2c9a1e-de89-4c1b-9a3e-370400440532',
    ])
      expect(holdsBankAccountNumber(text), text).toBe(false);
    // Words that spell a country's format, found by the reviewer when any separator was allowed anywhere.
    for (const text of [
      'QA12 regression sign-off for the checkout release',
      'Ro90 monthly subscription renewal invoice',
      'md24-subscription-renewal-invoice-april',
      'gt02 gift card top up for holiday season',
    ])
      expect(holdsBankAccountNumber(text), text).toBe(false);
    // In a log line: URL-encoded after any encoded character, tabs between its groups, or after a JSON escape.
    expect(maskBankAccountNumbers(`GET /v1/x?note=pay%20to%20${encodeURIComponent(IBANS[2])} 400`)).toBe(
      'GET /v1/x?note=pay%20to%20[bank account] 400',
    );
    expect(maskBankAccountNumbers(`?note=IBAN%3A${compact(IBANS[0])}&x=${IBANS[0].replace(/ /g, '%09')}`)).toBe(
      '?note=IBAN%3A[bank account]&x=[bank account]',
    );
    expect(maskBankAccountNumbers(JSON.stringify({ msg: `refused:\n${compact(IBANS[1])}` }))).toBe(
      '{"msg":"refused:\\n[bank account]"}',
    );
    // Slashes URL-encoded in a query, or escaped in JSON (`\/`).
    expect(maskBankAccountNumbers(`?to=${encodeURIComponent(IBANS[0].replace(/ /g, '/'))} 400`)).toBe(
      '?to=[bank account] 400',
    );
    expect(maskBankAccountNumbers(`{"to":"${IBANS[1].replace(/ /g, '\\/')}"}`)).toBe('{"to":"[bank account]"}');
  });

  it('is looked for in time linear in the text, before anything else reads it', () => {
    // Each start of a candidate reads at most an IBAN's length: a megabyte of them is read at once.
    const started = performance.now();
    expect(holdsBankAccountNumber('DE00 '.repeat(200_000))).toBe(false);
    expect(holdsBankAccountNumber('aa00 '.repeat(200_000))).toBe(false);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('is refused on every route, in the path, the query, the Idempotency-Key and the body, naming where', async () => {
    await refusedOnEveryRoute(
      { path: compact(IBANS[0]), query: IBANS[2], body: `refund to ${IBANS[1]}` },
      'bank_account_number_not_allowed',
    );
  });

  it('is then in no log line and no table', async () => {
    const logs = system.logLines.join('\n');
    for (const iban of IBANS) {
      expect(logs.includes(iban) || logs.includes(compact(iban)), iban).toBe(false);
      expect(logs.includes(encodeURIComponent(iban)), iban).toBe(false);
    }
    expect(await tablesHolding([...IBANS, ...IBANS.map(compact)])).toEqual([]);
  });
});
