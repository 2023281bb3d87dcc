import { PaymentSchedulerClient } from '../client/payment-scheduler-client.js';
import { newSandboxApiKey } from '../apps/sandbox/api-key.js';

export interface FirstTenant {
  tenantId: string;
  publicKey: string;
  privateKey: string;
}

/**
 * What a new installation needs before its first order: a tenant with a tenant-admin key, the
 * SANDBOX_CARD app installed, and a default collection scheme paying by card through it. Made
 * through the API with the first account's key, as a user would.
 */
export async function setUpFirstTenant(
  baseUrl: string,
  account: { accountId: string; publicKey: string; privateKey: string },
): Promise<FirstTenant> {
  const asAccount = new PaymentSchedulerClient({ baseUrl, ...account });
  const tenant = await expectStatus(
    201,
    asAccount.request<{ tenantId: string }>('POST', '/v1/account/tenants', { body: { name: 'First tenant' } }),
  );
  const key = await expectStatus(
    201,
    asAccount.request<{ publicKey: string; privateKey: string }>(
      'POST',
      `/v1/account/tenants/${tenant.tenantId}/keys`,
      {
        body: { name: 'first tenant admin', roles: ['tenant-admin'] },
      },
    ),
  );
  const asTenant = new PaymentSchedulerClient({
    baseUrl,
    publicKey: key.publicKey,
    privateKey: key.privateKey,
    tenantId: tenant.tenantId,
  });
  await expectStatus(
    201,
    asTenant.request('POST', '/v1/marketplace/apps/SANDBOX_CARD/install', {
      body: { configuration: { apiKey: newSandboxApiKey() } },
    }),
  );
  await expectStatus(
    201,
    asTenant.request('POST', '/v1/schemes/collect', {
      body: {
        name: 'Cards',
        isDefault: true,
        rules: [
          {
            currencies: [],
            countries: [],
            options: [{ appId: 'SANDBOX_CARD', paymentMethods: ['CARD'], priority: 1 }],
          },
        ],
      },
    }),
  );
  return { tenantId: tenant.tenantId, publicKey: key.publicKey, privateKey: key.privateKey };
}

async function expectStatus<T>(status: number, request: Promise<{ status: number; body: T }>): Promise<T> {
  const res = await request;
  if (res.status !== status) throw new Error(`first-run set-up failed with ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}
