import type { RequestHandler } from 'express';
import { ApiError } from './problem.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Puts the calling tenant in res.locals.tenantId. Until authentication lands, the x-tenant-id
 * header alone names the tenant; every tenant route reads the tenant from here and nowhere else.
 */
export const tenantContext: RequestHandler = (req, res, next) => {
  const tenantId = req.header('x-tenant-id');
  if (!tenantId || !UUID.test(tenantId)) {
    throw new ApiError(400, 'tenant_required', 'the x-tenant-id header must name the tenant (a UUID)', [
      { path: 'headers.x-tenant-id', code: tenantId ? 'invalid_format' : 'required', message: 'must be a UUID' },
    ]);
  }
  res.locals.tenantId = tenantId.toLowerCase();
  req.log?.setBindings?.({ tenantId: res.locals.tenantId });
  next();
};
