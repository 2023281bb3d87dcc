import { existsSync, readFileSync } from 'node:fs';
import { builtEntryPoint, PRODUCTION_ENV } from '../../scripts/build/production-build.js';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { TEMPORAL_SERVER_VERSION, TEMPORAL_UI_VERSION } from '../../scripts/temporal/server-binaries.js';
import { TEMPORAL_DYNAMIC_CONFIG } from '../../scripts/temporal/server-config.js';
import { temporalDatabasesOn } from '../../scripts/temporal/server-database.js';
import { ORDER_SEARCH_ATTRIBUTES } from '../../orders/contract/search-attributes.js';
import { workerNodeFlagsFor } from '../../worker/memory-budget.js';

interface Service {
  image?: string;
  build?: unknown;
  ports?: string[];
  environment?: Record<string, string>;
  entrypoint?: string[];
  command?: string | string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string | string[] };
  configs?: { source: string; target: string }[];
  volumes?: string[];
}

interface Compose {
  services: Record<string, Service>;
  configs?: Record<string, { content?: string }>;
}

// Merge keys (`<<: *app`) resolved, as Compose resolves them.
const compose = parse(readFileSync(new URL('../../docker-compose.yml', import.meta.url), 'utf8'), {
  merge: true,
}) as Compose;
const services = compose.services;
const names = Object.keys(services);

const serverVersion = TEMPORAL_SERVER_VERSION.replace(/^v/, '');
const uiVersion = TEMPORAL_UI_VERSION.replace(/^v/, '');
const ADMIN_TOOLS = 'temporalio/admin-tools';
/** Where temporalio/admin-tools keeps the server's schemas (its Dockerfile copies the server's `schema/` there). */
const IMAGE_SCHEMA_DIR = '/etc/temporal/schema/postgresql/v12';
/** The environment variable each service the others call binds by. */
const BIND_ENV: Record<string, string> = { api: 'API_HOST', sandbox: 'SANDBOX_HOST', temporal: 'BIND_ON_IP' };
/** Images that listen on all interfaces unless told otherwise (postgres: listen_addresses = '*'). */
const BINDS_ALL_BY_DEFAULT = new Set(['postgres']);

/** The shell script a one-shot service runs, whatever form its command takes. */
function script(service: Service): string {
  return [service.entrypoint ?? [], service.command ?? []]
    .flat()
    .join(' ')
    .replace(/\\\n\s*/g, '');
}

function probe(service: Service): string {
  const test = service.healthcheck?.test;
  return Array.isArray(test) ? test.join(' ') : (test ?? '');
}

/** A probe of host:port: in a URL or an address (`http://api:3000`, `temporal:7233`) or as pg_isready's `-h host -p port`. */
function probesAt(host: string, port: string): RegExp {
  return new RegExp(`(?:^|[\\s/'"])${host}:${port}\\b|-h ${host} -p ${port}\\b`);
}

function tagOf(image: string): string {
  return image.slice(image.lastIndexOf(':') + 1);
}

function waitsFor(name: string, dependency: string, condition: string): boolean {
  return services[name].depends_on?.[dependency]?.condition === condition;
}

/** host:port pairs naming another service, in every service's environment (URLs, addresses). */
function addressesOfServices(): { from: string; variable: string; host: string; port: string }[] {
  return Object.entries(services).flatMap(([from, service]) =>
    Object.entries(service.environment ?? {}).flatMap(([variable, value]) =>
      [...String(value).matchAll(/(?:^|\/\/|@)([a-z][a-z0-9-]*):(\d+)/g)]
        .filter((m) => names.includes(m[1]) && m[1] !== from)
        .map((m) => ({ from, variable, host: m[1], port: m[2] })),
    ),
  );
}

describe('docker-compose.yml', () => {
  it('publishes the unauthenticated Temporal frontend and UI on the host’s loopback only', () => {
    for (const name of ['temporal', 'temporal-ui']) {
      const ports = services[name].ports ?? [];
      expect(ports.length, name).toBeGreaterThan(0);
      for (const port of ports) expect(port, name).toMatch(/^127\.0\.0\.1:/);
    }
  });

  it('publishes nothing else but the API', () => {
    const published = Object.entries(services).filter(([, s]) => s.ports?.some((p) => !p.startsWith('127.0.0.1:')));
    expect(published.map(([name]) => name)).toEqual(['api']);
  });

  it('runs the Temporal server and UI versions npm run cluster builds, and no auto-setup image', () => {
    expect(services.temporal.image).toBe(`temporalio/server:${serverVersion}`);
    expect(services['temporal-ui'].image).toBe(`temporalio/ui:${uiVersion}`);
    const adminTools = Object.values(services).filter((s) => s.image?.startsWith(`${ADMIN_TOOLS}:`));
    expect(adminTools.length).toBeGreaterThan(0);
    // Its tags read <server>-tctl-<tctl>-cli-<cli>: the server version comes first.
    for (const service of adminTools) expect(tagOf(service.image!).split('-')[0]).toBe(serverVersion);
    expect(Object.values(services).filter((s) => s.image?.startsWith('temporalio/auto-setup'))).toEqual([]);
  });

  it('prepares both of the server’s databases with temporal-sql-tool before the server starts, as scripts/temporal/server-database.ts does', () => {
    const db = temporalDatabasesOn('postgres://payments@postgres:5432/payments');
    const schemaServices = names.filter((name) => waitsFor('temporal', name, 'service_completed_successfully'));
    expect(schemaServices).toHaveLength(1);
    const schema = services[schemaServices[0]];
    expect(schema.image).toMatch(new RegExp(`^${ADMIN_TOOLS}:`));
    const steps = script(schema);
    for (const [database, folder] of [
      [db.history, 'temporal'],
      [db.visibility, 'visibility'],
    ]) {
      const setup = steps.indexOf(`--db ${database} setup-schema -v 0.0`);
      const update = steps.indexOf(`--db ${database} update-schema -d ${IMAGE_SCHEMA_DIR}/${folder}/versioned`);
      expect(setup, database).toBeGreaterThanOrEqual(0);
      expect(update, database).toBeGreaterThan(setup);
    }
    expect(steps).toMatch(/temporal-sql-tool --plugin postgres12 --ep postgres\b/);
    // The server reads the databases the schema service prepared.
    expect(services.temporal.environment).toMatchObject({
      DB: 'postgres12',
      POSTGRES_SEEDS: 'postgres',
      DBNAME: db.history,
      VISIBILITY_DBNAME: db.visibility,
    });
  });

  it('gives the server the dynamic config npm run cluster writes', () => {
    const server = services.temporal;
    const mount = server.configs?.find((c) => c.target === server.environment?.DYNAMIC_CONFIG_FILE_PATH);
    expect(mount).toBeDefined();
    expect(parse(compose.configs?.[mount!.source]?.content ?? '')).toEqual(TEMPORAL_DYNAMIC_CONFIG);
  });

  it('registers the application’s namespace and the order search attributes before the api and worker start', () => {
    const namespace = services.api.environment?.TEMPORAL_NAMESPACE;
    expect(namespace).toBe('default');
    expect(services.worker.environment?.TEMPORAL_NAMESPACE).toBe(namespace);
    const registrars = names.filter((name) => script(services[name]).includes('operator namespace create'));
    expect(registrars).toHaveLength(1);
    const registrar = registrars[0];
    expect(waitsFor(registrar, 'temporal', 'service_healthy')).toBe(true);
    expect(waitsFor('api', registrar, 'service_completed_successfully')).toBe(true);
    expect(waitsFor('worker', registrar, 'service_completed_successfully')).toBe(true);
    const steps = script(services[registrar]);
    expect(steps).toContain(`operator namespace create -n ${namespace}`);
    expect(steps).toContain(`operator search-attribute create -n ${namespace}`);
    for (const key of ORDER_SEARCH_ATTRIBUTES) {
      const type = key.type.charAt(0) + key.type.slice(1).toLowerCase(); // KEYWORD -> Keyword, DATETIME -> Datetime
      expect(steps).toMatch(new RegExp(`--name ${key.name} --type ${type}\\b`));
    }
  });

  it('runs the application from the production build (JavaScript the build compiles), never through tsx', () => {
    const build = JSON.parse(
      readFileSync(new URL('../../tsconfig.build.json', import.meta.url), 'utf8').replace(/^\s*\/\/.*$/gm, ''),
    ) as { include: string[] };
    const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');
    const image = /^CMD (\[.*\])$/m.exec(dockerfile.slice(dockerfile.lastIndexOf('\nFROM ')))?.[1];
    const commands = [
      ['image', JSON.parse(image ?? '[]') as string[]],
      ...['api', 'worker', 'sandbox'].map((name) => [name, services[name].command as string[]] as const),
    ] as const;
    for (const [name, command] of commands) {
      expect(command.join(' '), name).not.toMatch(/tsx|\.ts\b/);
      const [node, ...flags] = command;
      const script = flags.pop()!;
      expect(node, name).toBe('node');
      // The worker's main thread keeps to the heap limit its memory budget sets; the others run as Node starts them.
      expect(flags, name).toEqual(name === 'worker' ? workerNodeFlagsFor(services[name].environment ?? {}) : []);
      const source = script.replace(/^dist\//, '').replace(/\.js$/, '.ts');
      expect(script, name).toBe(builtEntryPoint(source));
      expect(existsSync(new URL(`../../${source}`, import.meta.url)), `${name}: ${source}`).toBe(true);
      expect(build.include, name).toContain(source.split('/')[0]);
    }
    expect(dockerfile).toMatch(/^RUN npm run build$/m);
    // The environment npm run cluster starts the same processes with.
    const runtimeStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    for (const [name, value] of Object.entries(PRODUCTION_ENV)) {
      expect(runtimeStage).toMatch(new RegExp(`^ENV ${name}=${value}$`, 'm'));
    }
  });

  it('binds every service the others call to all interfaces of its container, not its loopback', () => {
    const called = new Set(addressesOfServices().map((a) => a.host));
    expect([...called].sort()).toEqual(['api', 'postgres', 'sandbox', 'temporal']);
    for (const host of called) {
      if (BINDS_ALL_BY_DEFAULT.has(host)) continue;
      expect(BIND_ENV[host], `how ${host} binds`).toBeDefined();
      expect(services[host].environment?.[BIND_ENV[host]], host).toBe('0.0.0.0');
    }
  });

  it('health-checks every service at the address the others call it by, so that a loopback bind fails the check', () => {
    for (const { from, variable, host, port } of addressesOfServices()) {
      expect(probe(services[host]), `${host}, as ${from} reaches it (${variable})`).toMatch(probesAt(host, port));
    }
    for (const [name, service] of Object.entries(services)) {
      if (!service.healthcheck) continue;
      expect(probe(service), name).toMatch(probesAt(name, '\\d+'));
      expect(probe(service), name).not.toMatch(/127\.0\.0\.1|localhost|\[::1\]|0\.0\.0\.0/);
    }
  });
});

describe('the compose stack’s operations', () => {
  const scrapes = parse(readFileSync(new URL('../../ops/prometheus/prometheus.yml', import.meta.url), 'utf8')) as {
    scrape_configs: { static_configs: { targets: string[] }[] }[];
  };
  const targets = scrapes.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets));

  it('has Prometheus scrape the api and the worker where they serve their metrics', () => {
    expect(targets).toEqual(['api:3000', `worker:${services.worker.environment!.WORKER_METRICS_PORT}`]);
    expect(services.api.command).toContain('dist/app/main.js');
    expect(services.prometheus.volumes).toContain('./ops/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
  });

  it('has Grafana provision the dashboard of ops/grafana on Prometheus, both on the host’s loopback', () => {
    for (const volume of services.grafana.volumes ?? []) {
      const [source] = volume.split(':');
      expect(() => readFileSync(new URL(`../../${source}`, import.meta.url)), source).not.toThrow();
    }
    expect(services.grafana.volumes?.some((v) => v.includes('payment-scheduler-dashboard.json'))).toBe(true);
    for (const name of ['prometheus', 'grafana'])
      for (const port of services[name].ports ?? []) expect(port).toMatch(/^127\.0\.0\.1:/);
  });
});
