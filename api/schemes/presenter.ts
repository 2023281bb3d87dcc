import type { Scheme } from '../../db/entities/index.js';
import type { SchemeRule } from '../../domain/scheme.js';

export function presentScheme(scheme: Scheme, rules: SchemeRule[]) {
  return {
    schemeId: scheme.id,
    kind: scheme.kind,
    name: scheme.name,
    version: scheme.currentVersion,
    isDefault: scheme.isDefault,
    rules,
    createdAt: scheme.createdAt.toISOString(),
    updatedAt: scheme.updatedAt.toISOString(),
  };
}
