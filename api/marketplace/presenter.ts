import { z } from 'zod';
import { secretFields, type AppDefinition } from '../../domain/app-catalog.js';
import type { AppInstallation } from '../../db/entities/index.js';

export function presentApp(app: AppDefinition) {
  return {
    appId: app.appId,
    name: app.name,
    description: app.description,
    directions: app.directions,
    paymentMethods: app.paymentMethods,
    countries: app.countries,
    currencies: app.currencies,
    configurationSchema: z.toJSONSchema(app.configuration) as Record<string, unknown>,
  };
}

/** Never a secret: only the names of the secret settings that are set. */
export function presentInstallation(app: AppDefinition, installation: AppInstallation) {
  return {
    appId: installation.appId,
    name: app.name,
    configuration: installation.configuration,
    secretsSet: secretFields(app).filter((field) => installation.secretsSet.includes(field)),
    installedAt: installation.createdAt.toISOString(),
    updatedAt: installation.updatedAt.toISOString(),
  };
}
