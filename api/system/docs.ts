import express, { Router } from 'express';
// The package's own entry also loads its 1.5 MB browser bundle into the process (about 13 MB of heap and
// a third of a second at every start); only the folder it names is needed here.
import swaggerUiFolder from 'swagger-ui-dist/absolute-path.js';

/** /openapi.json and a Swagger UI page at /docs, served from the installed package (no CDN needed). */
export function docsRouter(document: () => object): Router {
  const router = Router();
  let cached: object | undefined;
  router.get('/openapi.json', (_req, res) => {
    cached ??= document();
    res.json(cached);
  });
  router.get('/docs', (_req, res) => {
    res.type('html').send(DOCS_PAGE);
  });
  router.use('/docs/assets', express.static(swaggerUiFolder(), { index: false }));
  return router;
}

const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Payment scheduler API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script>window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui" });</script>
</body>
</html>`;
