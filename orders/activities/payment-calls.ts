import { ApplicationFailure, heartbeat, log } from '@temporalio/activity';
import type { AppConnector } from '../../apps/app-connector.js';
import { SecretOpenError } from '../../db/secret-box.js';
import type { InstalledApp } from '../../domain/installed-app.js';
import { ProviderRejectedError, type PaymentOutcome } from '../../domain/payment-outcome.js';
import type { InstallationCache } from './installation-cache.js';
import {
  APP_CREDENTIALS_UNREADABLE,
  APP_NOT_INSTALLED,
  PROVIDER_REJECTED,
  type ExecutePaymentInput,
  type PaymentLookupInput,
  type PaymentStatusInput,
} from '../contract/activities.js';

const HEARTBEAT_EVERY_MS = 3_000;

export interface PaymentActivityDependencies {
  apps: Map<string, AppConnector>;
  installations: InstallationCache;
}

/**
 * Asks the instruction's app to move the money, with the tenant's credentials read here (never
 * from workflow input or history). Network errors and 5xx propagate and are retried by the
 * activity's retry policy with the same idempotency key; declines come back as outcomes; what no
 * retry can cure (app not installed, credentials unreadable, the provider refusing the request)
 * fails at once with a type the workflow branches on.
 */
export function createPaymentActivities({ apps, installations }: PaymentActivityDependencies) {
  async function connect(tenantId: string, appId: string): Promise<{ app: AppConnector; installation: InstalledApp }> {
    const app = apps.get(appId);
    let installation: InstalledApp | undefined;
    try {
      installation = await installations.get(tenantId, appId);
    } catch (err) {
      if (err instanceof SecretOpenError) {
        throw ApplicationFailure.create({
          type: APP_CREDENTIALS_UNREADABLE,
          message: `credentials of ${appId} cannot be opened: ${err.message}`,
          nonRetryable: true,
        });
      }
      throw err;
    }
    if (!app || !installation)
      throw ApplicationFailure.create({
        type: APP_NOT_INSTALLED,
        message: `${appId} is not installed`,
        nonRetryable: true,
      });
    return { app, installation };
  }

  async function call(what: () => Promise<PaymentOutcome>): Promise<PaymentOutcome> {
    // Heartbeats while the provider answers: if this worker dies, Temporal learns it within the
    // heartbeat timeout and retries elsewhere (with the same key) instead of waiting out the call's whole timeout.
    const beat = setInterval(() => heartbeat(), HEARTBEAT_EVERY_MS);
    try {
      return await what();
    } catch (err) {
      if (err instanceof ProviderRejectedError) {
        throw ApplicationFailure.create({
          type: PROVIDER_REJECTED,
          message: err.message,
          details: [err.code],
          nonRetryable: true,
        });
      }
      throw err;
    } finally {
      clearInterval(beat);
    }
  }

  return {
    async executePayment({ appId, request, idempotencyKey }: ExecutePaymentInput): Promise<PaymentOutcome> {
      const { app, installation } = await connect(request.tenantId, appId);
      const outcome = await call(() => app.execute(request, idempotencyKey, installation));
      log.info('payment executed', {
        tenantId: request.tenantId,
        orderRef: request.orderRef,
        instructionRef: request.instructionRef,
        appId,
        status: outcome.status,
        providerRef: outcome.providerRef,
      });
      return outcome;
    },

    async getPaymentStatus({ appId, tenantId, providerRef }: PaymentStatusInput): Promise<PaymentOutcome> {
      const { app, installation } = await connect(tenantId, appId);
      return call(() => app.getStatus(providerRef, installation));
    },

    async lookupPayment({ appId, tenantId, idempotencyKey }: PaymentLookupInput): Promise<PaymentOutcome | null> {
      const { app, installation } = await connect(tenantId, appId);
      let found: PaymentOutcome | undefined;
      await call(async () => {
        found = await app.findByIdempotencyKey(idempotencyKey, installation);
        return found as PaymentOutcome;
      });
      log.info('asked the provider about an unanswered payment', {
        tenantId,
        appId,
        idempotencyKey,
        found: found?.status ?? 'none',
      });
      return found ?? null;
    },
  };
}
