import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MikroORM } from '@mikro-orm/postgresql';
import { bootstrapAccount, type BootstrappedAccount } from '../api/auth/bootstrap-account.js';
import { Account } from '../db/entities/index.js';
import type { MasterKeys } from '../db/secret-box.js';
import { setUpFirstTenant, type FirstTenant } from './first-tenant.js';

type FirstRun = BootstrappedAccount & { tenant: FirstTenant };

/**
 * On a database without accounts, makes an account to log in with and a tenant ready for a first
 * order (SANDBOX_CARD installed, a default card scheme), through the API at `apiUrl`, and says
 * what to keep. Their private keys are shown this once, but never into a log: on a terminal they
 * are printed; when output goes to a file or a pipe, they are written to a file only its owner can
 * read, and only that file's path is printed.
 */
export async function firstRunMessage(
  orm: MikroORM,
  masterKeys: MasterKeys,
  apiUrl: string,
  dataDir: string,
): Promise<string> {
  if ((await orm.em.fork().count(Account)) > 0)
    return 'Accounts exist already; `npm run bootstrap` makes another account and key.\n';
  const account = await bootstrapAccount(orm, masterKeys);
  const firstRun: FirstRun = { ...account, tenant: await setUpFirstTenant(apiUrl, account) };
  if (process.stdout.isTTY) {
    return `First account (shown once; keep it):
  accountId   ${firstRun.accountId}
  publicKey   ${firstRun.publicKey}
  privateKey  ${firstRun.privateKey}
Its tenant "First tenant", with SANDBOX_CARD installed and a default card scheme:
  tenantId    ${firstRun.tenant.tenantId}
  publicKey   ${firstRun.tenant.publicKey}
  privateKey  ${firstRun.tenant.privateKey}
`;
  }
  const file = join(dataDir, 'first-account.json');
  writeFileSync(file, `${JSON.stringify(firstRun, null, 2)}\n`, { mode: 0o600 });
  return `First account and tenant: their keys are in ${file} (readable by you alone; output is not a terminal, so they are not printed here).\n`;
}
