// A first session against a running system: sign in as the account key that `npm start` printed,
// create a tenant and a tenant key, install the sandbox card app and a collection scheme that pays
// by card through it, submit an order that settles in ten seconds, and read it back.
//   API=http://localhost:3000 ACCOUNT=… PUBLIC_KEY=… PRIVATE_KEY=… npx tsx client/example.ts
import { PaymentSchedulerClient, type ApiResponse } from './payment-scheduler-client.js';

const { API = 'http://localhost:3000', ACCOUNT, PUBLIC_KEY, PRIVATE_KEY } = process.env;
if (!ACCOUNT || !PUBLIC_KEY || !PRIVATE_KEY)
  throw new Error('set ACCOUNT, PUBLIC_KEY and PRIVATE_KEY to the key `npm start` printed');

function show(label: string, res: ApiResponse) {
  console.log(`${label}: ${res.status}\n${JSON.stringify(res.body, null, 2)}\n`);
  if (res.status >= 400) process.exit(1);
  return res.body;
}

const account = new PaymentSchedulerClient({
  baseUrl: API,
  publicKey: PUBLIC_KEY,
  privateKey: PRIVATE_KEY,
  accountId: ACCOUNT,
});
const tenant = show(
  'create tenant',
  await account.request('POST', '/v1/account/tenants', { body: { name: 'Example Insurance' } }),
);
const key = show(
  'create tenant key (the private key is shown only now)',
  await account.request('POST', `/v1/account/tenants/${tenant.tenantId}/keys`, {
    body: { name: 'example', roles: ['tenant-admin'] },
  }),
);

const api = new PaymentSchedulerClient({
  baseUrl: API,
  publicKey: key.publicKey,
  privateKey: key.privateKey,
  tenantId: tenant.tenantId,
});
show(
  'install the sandbox card app (its API key is a secret: never shown again)',
  await api.request('POST', '/v1/marketplace/apps/SANDBOX_CARD/install', {
    body: { configuration: { apiKey: `sk_test_${crypto.randomUUID().replaceAll('-', '')}` } },
  }),
);
show(
  'create the default collection scheme: cards, through SANDBOX_CARD',
  await api.request('POST', '/v1/schemes/collect', {
    body: {
      name: 'Cards',
      isDefault: true,
      rules: [
        { currencies: [], countries: [], options: [{ appId: 'SANDBOX_CARD', paymentMethods: ['CARD'], priority: 1 }] },
      ],
    },
  }),
);
const now = Date.now();
show(
  'submit order',
  await api.request('POST', '/v1/order-management', {
    headers: { 'idempotency-key': crypto.randomUUID() },
    body: {
      orderRef: 'policy-42',
      instructions: [
        {
          instructionRef: 'premium-1',
          direction: 'DEBIT',
          amount: '25.00',
          currency: 'EUR',
          country: 'IE',
          openDate: new Date(now).toISOString(),
          dueDate: new Date(now + 10_000).toISOString(),
          financialInstrumentId: 'card_visa_4242',
        },
      ],
    },
  }),
);

for (;;) {
  const order = (await api.request('GET', '/v1/order-management/policy-42')).body;
  console.log(`order ${order.status}, instruction ${order.instructions[0].status}`);
  if (order.status !== 'ACTIVE') {
    show('final order', { status: 200, headers: new Headers(), body: order });
    break;
  }
  await new Promise((resolve) => setTimeout(resolve, 2000));
}
