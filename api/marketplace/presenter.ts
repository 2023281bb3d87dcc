import { z } from 'zod';
import { secretFields, type AppDefinition } from '../../domain/app-catalog.js';
import { replacedTimesShown } from '../../domain/retired-secrets.js';
import type { AppInstallation } from '../../db/entities/index.js';
import { openSecretTimes } from '../../db/installed-apps.js';
import { SecretOpenError, type SecretBox } from '../../db/secret-box.js';

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

/** Never a secret: only the names of the secret settings that are set, and the times of replaced ones still verifying. */
export function presentInstallation(secretBox: SecretBox, app: AppDefinition, installation: AppInstallation) {
  return {
    appId: installation.appId,
    name: app.name,
    configuration: installation.configuration,
    secretsSet: secretFields(app).filter((field) => installation.secretsSet.includes(field)),
    replacedSecretTimes: replacedSecretsShown(secretBox, app, installation),
    installedAt: installation.createdAt.toISOString(),
    updatedAt: installation.updatedAt.toISOString(),
  };
}

/** The replaced callback secrets' times still verifying; null when they cannot be opened (a master key rotated without the previous one). */
function replacedSecretsShown(secretBox: SecretBox, app: AppDefinition, installation: AppInstallation) {
  try {
    return replacedTimesShown(app, openSecretTimes(secretBox, installation), new Date());
  } catch (err) {
    if (err instanceof SecretOpenError) return null;
    throw err;
  }
}
