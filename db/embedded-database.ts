import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { readOrCreateSecretFile } from './create-once-file.js';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/**
 * PostgreSQL compiled to WebAssembly (PGlite), served over the Postgres wire protocol so that `pg`
 * and MikroORM use it like any server. `dataDir` persists it (and its password); omit it for an
 * in-memory database.
 *
 * PGlite itself lets anyone in, so it listens on a Unix socket in a directory only this user can
 * open, and the TCP port (loopback only) is a small gate in front of it that asks for the password
 * kept in the data folder (MD5 challenge, as PostgreSQL's `md5` method) before passing bytes through.
 */
export async function startEmbeddedDatabase(port: number, dataDir?: string): Promise<EmbeddedDatabase> {
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const password = dataDir
    ? readOrCreateSecretFile(passwordFile(dataDir), () => randomBytes(24).toString('base64url'))
    : randomBytes(24).toString('base64url');
  const db = await PGlite.create(dataDir);
  const socketDir = mkdtempSync(join(tmpdir(), 'pglite-'));
  const socketPath = join(socketDir, '.s.PGSQL');
  const inner = new PGLiteSocketServer({ db, path: socketPath, maxConnections: 16 });
  await inner.start();
  const gate = await listenGate(port, password, socketPath);
  return {
    url: embeddedUrl(port, password),
    async stop() {
      await new Promise<void>((resolve) => gate.close(() => resolve()));
      await inner.stop();
      await db.close();
      rmSync(socketDir, { recursive: true, force: true });
    },
  };
}

/** The URL of an embedded database another process serves from `dataDir` (for `npm run bootstrap` beside `npm start`). */
export function embeddedDatabaseUrl(port: number, dataDir: string): string {
  return embeddedUrl(port, readFileSync(passwordFile(dataDir), 'utf8').trim());
}

function embeddedUrl(port: number, password: string): string {
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
}

function passwordFile(dataDir: string): string {
  return join(dataDir, 'password');
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

async function listenGate(port: number, password: string, socketPath: string): Promise<Server> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    void admit(client, password, socketPath).catch(() => client.destroy());
  });
  const close = server.close.bind(server);
  // A pooled client keeps its connection open: closing the gate ends them, as stopping a server would.
  server.close = (callback?: (err?: Error) => void) => {
    for (const socket of sockets) socket.destroy();
    return close(callback);
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return server;
}

/** The startup exchange of the wire protocol, up to the password check; then a plain byte pipe to PGlite. */
async function admit(client: Socket, password: string, socketPath: string): Promise<void> {
  const reader = new MessageReader(client);
  let startup: Buffer;
  for (;;) {
    startup = await reader.untyped();
    const code = startup.readInt32BE(4);
    if (code !== SSL_REQUEST && code !== GSSENC_REQUEST) break;
    client.write('N');
  }
  const user = startupParameter(startup, 'user') ?? '';
  const salt = randomBytes(4);
  client.write(Buffer.concat([Buffer.from('R'), int32(12), int32(5), salt]));
  const answer = await reader.typed('p');
  const given = Buffer.from(answer.subarray(0, answer.indexOf(0)).toString('utf8'));
  const expected = Buffer.from(`md5${md5(md5(password + user) + salt.toString('binary'), 'binary')}`);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    client.end(errorResponse('28P01', `password authentication failed for user "${user}"`));
    return;
  }
  const backend = createConnection(socketPath);
  backend.on('error', () => client.destroy());
  client.on('close', () => backend.destroy());
  backend.on('close', () => client.destroy());
  backend.write(startup);
  const rest = reader.release();
  if (rest.length > 0) backend.write(rest);
  client.pipe(backend);
  backend.pipe(client);
}

function md5(text: string, encoding: 'utf8' | 'binary' = 'utf8'): string {
  return createHash('md5').update(text, encoding).digest('hex');
}

function int32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32BE(value);
  return buffer;
}

function startupParameter(startup: Buffer, name: string): string | undefined {
  const parts = startup.subarray(8).toString('utf8').split('\0');
  const at = parts.indexOf(name);
  return at >= 0 && at % 2 === 0 ? parts[at + 1] : undefined;
}

function errorResponse(sqlState: string, message: string): Buffer {
  const fields = Buffer.from(`SFATAL\0VFATAL\0C${sqlState}\0M${message}\0\0`, 'utf8');
  return Buffer.concat([Buffer.from('E'), int32(fields.length + 4), fields]);
}

/** Reads whole protocol messages from a socket during the startup exchange. */
class MessageReader {
  private buffered = Buffer.alloc(0);
  private waiting?: () => void;
  private readonly onData = (chunk: Buffer) => {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    if (this.buffered.length > 64 * 1024) this.socket.destroy();
    this.waiting?.();
  };

  constructor(private readonly socket: Socket) {
    socket.on('data', this.onData);
    socket.on('close', () => this.waiting?.());
  }

  /** A startup-phase message: Int32 length (itself included), then the body. */
  async untyped(): Promise<Buffer> {
    await this.have(4);
    const length = this.buffered.readInt32BE(0);
    if (length < 8 || length > 10_000) throw new Error('bad startup packet');
    await this.have(length);
    return this.take(length);
  }

  /** A typed message: Byte1 type, Int32 length, body. Returns the body. */
  async typed(type: string): Promise<Buffer> {
    await this.have(5);
    if (String.fromCharCode(this.buffered[0]) !== type) throw new Error(`expected message ${type}`);
    const length = this.buffered.readInt32BE(1);
    if (length < 4 || length > 10_000) throw new Error('bad message length');
    await this.have(1 + length);
    return this.take(1 + length).subarray(5);
  }

  /** Stops reading; returns whatever arrived beyond the startup exchange. */
  release(): Buffer {
    this.socket.off('data', this.onData);
    return this.buffered;
  }

  private take(length: number): Buffer {
    const message = this.buffered.subarray(0, length);
    this.buffered = this.buffered.subarray(length);
    return message;
  }

  private async have(length: number): Promise<void> {
    while (this.buffered.length < length) {
      if (this.socket.destroyed || this.socket.readableEnded) throw new Error('connection closed');
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
      });
      this.waiting = undefined;
    }
  }
}
