import { Router } from 'express';
import { METRICS_CONTENT_TYPE, metricsText, scrapeAllowed } from '../../observability/metrics-endpoint.js';
import { unauthenticated } from '../auth/authenticate.js';

/**
 * `GET /metrics` for Prometheus: outside /v1 and its tenant keys, behind METRICS_TOKEN when set.
 * `sdkMetricsUrl`: a worker in this process (`npm start`) adds the SDK's metrics to ours.
 */
export function metricsRouter(options: { token?: string; sdkMetricsUrl?: string }): Router {
  const router = Router();
  router.get('/metrics', async (req, res) => {
    if (!scrapeAllowed(options.token, req.header('authorization')))
      throw unauthenticated('metrics need the bearer token set in METRICS_TOKEN');
    res.type(METRICS_CONTENT_TYPE).send(await metricsText(options.sdkMetricsUrl));
  });
  return router;
}
