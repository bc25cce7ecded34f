// Starts a real imd (IMD_PATH) on free loopback ports with a temporary data directory, and
// stops it. Tokens are minted through the Web API with the test's admin key.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';

export const kAdminKey = 'web-sdk-test-admin-key-0123456789';

export interface ImdOptions {
  /** Extra TOML lines for the [server] table. */
  server?: string[];
  /** Extra TOML appended as is (other tables). */
  toml?: string;
  /** A fixed HTTP port (kept across restarts, for a page served by imd). Default: any. */
  httpPort?: number;
}

/** A loopback port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

export class Imd {
  readonly dir = mkdtempSync(join(tmpdir(), 'im-web-sdk-'));
  wsUrl = '';
  httpUrl = '';
  private child: ChildProcess | null = null;
  private stderr = '';

  constructor(private readonly options: ImdOptions = {}) {
    const server = [`http = "127.0.0.1:${options.httpPort ?? 0}"`, 'tcp = "127.0.0.1:0"', ...(options.server ?? [])];
    writeFileSync(join(this.dir, 'imd.toml'), [
      '[server]', ...server, '', '[admin_keys]', `default = "${kAdminKey}"`, '',
      '[log]', 'console = false', '', options.toml ?? '',
    ].join('\n'));
  }

  static async start(options: ImdOptions = {}): Promise<Imd> {
    const imd = new Imd(options);
    await imd.run();
    return imd;
  }

  /** Starts (again, on the same data directory; the ports are new). */
  async run(): Promise<void> {
    const path = process.env.IMD_PATH;
    if (!path) throw new Error('IMD_PATH is not set');
    const child = spawn(path, ['--config', join(this.dir, 'imd.toml'), '--data',
                               join(this.dir, 'data')], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`imd did not start: ${this.stderr}`)), 20000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = / serving (ws:\/\/\S+) (http:\/\/\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          this.wsUrl = m[1]!;
          this.httpUrl = m[2]!.replace(/\/$/, '');
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`imd exited with ${code}: ${this.stderr}`));
      });
    });
  }

  /** SIGTERM (a drain) and waits for the exit; SIGKILL after 15 s. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const kill = setTimeout(() => child.kill('SIGKILL'), 15000);
    await exited;
    clearTimeout(kill);
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A token for `user` (any user id of tenant default), through the admin key. */
  async token(user: string, ttlS = 3600): Promise<string> {
    const r = await this.http('POST', '/v1/tokens', { user, ttl_s: ttlS }, kAdminKey);
    if (r.status !== 201) throw new Error(`token: ${r.status} ${JSON.stringify(r.body)}`);
    return String(r.body.token);
  }

  async http(method: string, path: string, body?: unknown, bearer?: string):
      Promise<{ status: number; body: Record<string, unknown> }> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    const init: RequestInit = { method, headers };
    if (body !== undefined) init.body = JSON.stringify(body);
    const r = await fetch(this.httpUrl + path, init);
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) as Record<string, unknown> : {} };
  }
}

/** Polls `check` until it holds or `ms` pass (generous: the machine is shared). */
export async function waitFor(what: string, check: () => boolean, ms = 20000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
