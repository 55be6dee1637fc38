/**
 * Helpers for the API server's own tests: raw HTTPS requests with the server's CA and token, and a
 * client-node KubeConfig loaded from the kubeconfig the server wrote.
 */

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { type ApiServer, startApiServer } from './index.ts';

/** A raw response. */
export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  body: Record<string, unknown>;
}

/** Options of {@link call}. */
export interface CallOptions {
  body?: unknown;
  contentType?: string;
  accept?: string;
  /** Send no Authorization header. */
  anonymous?: boolean;
}

/** Sends one HTTPS request to the server and reads the whole response. */
export function call(
  server: ApiServer,
  method: string,
  path: string,
  opts: CallOptions = {},
): Promise<RawResponse> {
  const payload =
    opts.body === undefined
      ? undefined
      : typeof opts.body === 'string'
        ? opts.body
        : JSON.stringify(opts.body);
  const headers: Record<string, string> = {};
  if (!opts.anonymous) headers.Authorization = `Bearer ${server.token}`;
  if (payload !== undefined) {
    headers['Content-Type'] = opts.contentType ?? 'application/json';
    headers['Content-Length'] = String(Buffer.byteLength(payload));
  }
  if (opts.accept !== undefined) headers.Accept = opts.accept;
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${server.url}${path}`, { method, headers, ca: server.caPem }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(text) as Record<string, unknown>;
        } catch {
          body = {};
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** A client-node KubeConfig for the server, loaded from the kubeconfig file it wrote. */
export function kubeConfigFor(server: ApiServer): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(server.kubeconfigPath);
  return kc;
}

/** Opens a watch and collects its events until `stop()`; `closed` resolves when the server ends it. */
export function openWatch(
  server: ApiServer,
  path: string,
): {
  events: { type: string; object: Record<string, unknown> }[];
  status: Promise<number>;
  closed: Promise<void>;
  stop(): void;
} {
  const events: { type: string; object: Record<string, unknown> }[] = [];
  let stopFn: () => void = () => {};
  let resolveStatus: (code: number) => void = () => {};
  const status = new Promise<number>((resolve) => {
    resolveStatus = resolve;
  });
  const closed = new Promise<void>((resolve, reject) => {
    const req = httpsRequest(
      `${server.url}${path}`,
      { headers: { Authorization: `Bearer ${server.token}` }, ca: server.caPem },
      (res) => {
        resolveStatus(res.statusCode ?? 0);
        let buffered = '';
        res.on('data', (chunk: Buffer) => {
          buffered += chunk.toString('utf8');
          let newline = buffered.indexOf('\n');
          while (newline >= 0) {
            const line = buffered.slice(0, newline);
            buffered = buffered.slice(newline + 1);
            if (line.trim() !== '')
              events.push(JSON.parse(line) as { type: string; object: Record<string, unknown> });
            newline = buffered.indexOf('\n');
          }
        });
        res.on('end', () => resolve());
        res.on('close', () => resolve());
        res.on('error', () => resolve());
      },
    );
    req.on('error', (err) => {
      if ((err as NodeJS.ErrnoException).code === 'ECONNRESET') resolve();
      else reject(err);
    });
    req.end();
    stopFn = () => req.destroy();
  });
  return { events, status, closed, stop: () => stopFn() };
}

/** Polls `check` until it returns true or `timeoutMs` passes (then throws with `what`). */
export async function eventually(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** How one kubectl run ended. */
export interface KubectlRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs /usr/bin/kubectl against the server with `stdin` piped in. HOME is `home` (a temporary
 * folder) so kubectl's discovery cache starts empty and stays out of the user's; a failed run
 * resolves with its exit code instead of rejecting, because tests assert on failures.
 */
function runKubectl(server: ApiServer, home: string, args: string[], stdin: string): Promise<KubectlRun> {
  return new Promise((resolve) => {
    const child = execFile(
      '/usr/bin/kubectl',
      args,
      {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, KUBECONFIG: server.kubeconfigPath },
        timeout: 30_000,
        killSignal: 'SIGKILL',
      },
      (error, stdout, stderr) =>
        resolve({
          code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1,
          stdout,
          stderr,
        }),
    );
    child.stdin?.end(stdin);
  });
}

/** A server and kubectl against it, for the tests of one describe block. */
export interface KubectlSession {
  /** The running server (read it inside tests: it starts in the block's `before`). */
  readonly server: ApiServer;
  /** {@link runKubectl} against the server with the session's own HOME. */
  kubectl(args: string[], stdin: string): Promise<KubectlRun>;
}

/**
 * Registers `before`/`after` hooks in the calling describe block that start a server and a
 * temporary kubectl HOME, and remove both afterwards.
 */
export function kubectlSession(): KubectlSession {
  let running: ApiServer | undefined;
  let home = '';
  before(async () => {
    running = await startApiServer();
    home = mkdtempSync(join(tmpdir(), 'portico-kubectl-'));
  });
  after(async () => {
    await running?.close();
    if (home !== '') rmSync(home, { recursive: true, force: true });
  });
  const session: KubectlSession = {
    get server(): ApiServer {
      if (running === undefined) throw new Error('the API server starts in before(): read it inside a test');
      return running;
    },
    kubectl: (args, stdin) => runKubectl(session.server, home, args, stdin),
  };
  return session;
}
