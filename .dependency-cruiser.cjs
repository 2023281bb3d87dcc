// The import rules of ARCHITECTURE.md ("Layout"), checked by `npm run lint`. The table below is that
// section's table: each folder, and the folders it may import besides itself and npm packages.
// Nothing imports a layer above its own, and no import (type-only ones included) closes a circle.
// Change the two together.

/** The base every layer may use: pure rules, settings, the logger. */
const BASE = ['domain/', 'config.ts', 'logger.ts', 'observability/'];
const BELOW_THE_WINGS = [...BASE, 'db/', 'apps/', 'temporal/', 'api/'];
const SERVICE_CODE = [
  ...BELOW_THE_WINGS,
  'webhooks/',
  'customers/',
  'orders/',
  'reconciliation/',
  'app/',
  'worker/',
  'client/',
];

const MAY_IMPORT = {
  'domain/': [],
  'config.ts': [],
  // The logger masks card numbers with domain's one rule of what a card number is.
  'logger.ts': ['domain/'],
  // Metrics (one registry per process) and what serves them: used from every layer, importing none.
  'observability/': [],
  'db/': BASE,
  'apps/': BASE,
  'temporal/': BASE,
  'api/': [...BASE, 'db/'],
  'webhooks/': BELOW_THE_WINGS,
  'customers/': [...BELOW_THE_WINGS, 'webhooks/'],
  'orders/': [...BELOW_THE_WINGS, 'webhooks/', 'customers/'],
  'reconciliation/': [...BELOW_THE_WINGS, 'webhooks/'],
  'app/': SERVICE_CODE,
  'worker/': SERVICE_CODE,
  'client/': BASE,
  'scripts/': [...SERVICE_CODE, 'scripts/'],
  'bench/': [...SERVICE_CODE, 'scripts/'],
  'test/': [...SERVICE_CODE, 'scripts/', 'bench/'],
};

/** Workflow code is bundled and replayed: it may use only the SDK's workflow API, pure rules and its wing's contract. */
const WORKFLOW_MAY_IMPORT = {
  '^orders/workflow/': '^(domain/|orders/(workflow|contract)/)',
  '^webhooks/workflow/': '^(domain/|webhooks/(workflow/|contract\\.ts$))',
  // A contract is what the workflow, its activities and its callers share: nothing of the wing's I/O.
  '^orders/contract/': '^(domain/|orders/contract/)',
  '^webhooks/contract\\.ts$': '^domain/',
};
const WORKFLOW_PACKAGES = '^node_modules/@temporalio/(workflow|common)/';

/** What "nothing with I/O" means for domain/ (node:net's isIP, a parser, is allowed; its sockets come through these). */
const IO_MODULES =
  '^(node:)?(fs|fs/promises|http|https|http2|dns|tls|child_process|cluster|worker_threads)$|^node_modules/(pg|got|express|@mikro-orm/[^/]+|@temporalio/(client|worker|activity|testing))/';

const escape = (path) => path.replaceAll('.', '\\.');
const anyOf = (paths) => `^(${paths.map(escape).join('|')})`;
/** The project's own files (what is not one of them is a package or a Node built-in). */
const PROJECT = anyOf(Object.keys(MAY_IMPORT));

module.exports = {
  forbidden: [
    ...Object.entries(MAY_IMPORT).map(([folder, allowed]) => ({
      name: `layers: ${folder}`,
      comment: `${folder} may import ${allowed.length ? allowed.join(', ') : 'nothing of the project'} (ARCHITECTURE.md, "Layout")`,
      severity: 'error',
      from: { path: `^${escape(folder)}` },
      to: { path: PROJECT, pathNot: anyOf([folder, ...allowed]) },
    })),
    ...Object.entries(WORKFLOW_MAY_IMPORT).map(([from, allowed]) => ({
      name: `deterministic: ${from}`,
      comment: 'workflow code and its contract import only the workflow SDK, domain/ and the contract',
      severity: 'error',
      from: { path: from },
      to: { path: PROJECT, pathNot: allowed },
    })),
    ...Object.keys(WORKFLOW_MAY_IMPORT).map((from) => ({
      name: `deterministic packages: ${from}`,
      comment: 'workflow code uses no package but the workflow SDK, and no Node built-in',
      severity: 'error',
      from: { path: from },
      to: { pathNot: `${PROJECT}|${WORKFLOW_PACKAGES}` },
    })),
    {
      name: 'domain has no I/O',
      severity: 'error',
      from: { path: '^domain/' },
      to: { path: IO_MODULES },
    },
    {
      name: 'no circles',
      comment: 'an import circle, type-only imports included',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'nothing unlisted',
      comment: 'every file belongs to a folder of the table (add a new one there, and to ARCHITECTURE.md)',
      severity: 'error',
      from: { pathNot: `${PROJECT}|^(vitest\\.config\\.ts|eslint\\.config\\.js)$` },
      to: {},
    },
  ],
  options: {
    // Type-only imports count: a circle of types is a circle of concepts.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|\\.data)/|^test/workflow/histories/' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
