import { type ChildProcess, spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import type { V1Container, V1Probe } from '@kubernetes/client-node';
import { defaultIpPath } from './netns.ts';

/** A probe with upstream's defaults filled in and its timing validated. */
export interface ProbeTiming {
  readonly initialDelaySeconds: number;
  readonly periodSeconds: number;
  readonly timeoutSeconds: number;
  readonly successThreshold: number;
  readonly failureThreshold: number;
}

/** Fills in upstream's defaults (0, 10, 1, 1, 3) and rejects values the API would reject. */
export function probeTiming(probe: V1Probe, field = 'readinessProbe'): ProbeTiming {
  const timing = {
    initialDelaySeconds: probe.initialDelaySeconds ?? 0,
    periodSeconds: probe.periodSeconds ?? 10,
    timeoutSeconds: probe.timeoutSeconds ?? 1,
    successThreshold: probe.successThreshold ?? 1,
    failureThreshold: probe.failureThreshold ?? 3,
  };
  const minimums: [keyof ProbeTiming, number][] = [
    ['initialDelaySeconds', 0],
    ['periodSeconds', 1],
    ['timeoutSeconds', 1],
    ['successThreshold', 1],
    ['failureThreshold', 1],
  ];
  for (const [key, minimum] of minimums) {
    const value = timing[key];
    if (!Number.isInteger(value) || value < minimum) {
      throw new Error(
        `${field}.${key}: Invalid value: ${value}: must be greater than or equal to ${minimum}`,
      );
    }
  }
  return timing;
}

/** Consecutive-result bookkeeping of one readiness probe. */
export interface ReadinessState {
  readonly ready: boolean;
  readonly consecutiveSuccesses: number;
  readonly consecutiveFailures: number;
}

/** Readiness starts False: a container is not ready until its probe has passed. */
export const initialReadinessState: ReadinessState = {
  ready: false,
  consecutiveSuccesses: 0,
  consecutiveFailures: 0,
};

/**
 * Folds one probe result into the state: readiness turns True after `successThreshold`
 * consecutive successes and False after `failureThreshold` consecutive failures; in between it
 * keeps its value, which is what makes the thresholds damp flapping.
 */
export function recordProbeResult(
  state: ReadinessState,
  success: boolean,
  timing: ProbeTiming,
): ReadinessState {
  if (success) {
    const consecutiveSuccesses = state.consecutiveSuccesses + 1;
    return {
      ready: state.ready || consecutiveSuccesses >= timing.successThreshold,
      consecutiveSuccesses,
      consecutiveFailures: 0,
    };
  }
  const consecutiveFailures = state.consecutiveFailures + 1;
  return {
    ready: state.ready && consecutiveFailures < timing.failureThreshold,
    consecutiveSuccesses: 0,
    consecutiveFailures,
  };
}

/** When the next probe is due: `initialDelaySeconds` after start, then every `periodSeconds`. */
export function nextProbeDueMs(
  startedAtMs: number,
  lastProbeAtMs: number | undefined,
  timing: ProbeTiming,
  msPerSecond = 1000,
): number {
  if (lastProbeAtMs === undefined) return startedAtMs + timing.initialDelaySeconds * msPerSecond;
  return lastProbeAtMs + timing.periodSeconds * msPerSecond;
}

/** A probe reduced to what to do on the wire. */
export type ProbeAction =
  | {
      readonly kind: 'http';
      readonly port: number;
      readonly path: string;
      readonly scheme: 'http' | 'https';
      readonly host?: string;
    }
  | { readonly kind: 'tcp'; readonly port: number; readonly host?: string }
  | { readonly kind: 'exec' };

function resolvePort(port: number | string, container: V1Container, field: string): number {
  if (typeof port === 'number') {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new Error(`${field}: Invalid value: ${port}: must be between 1 and 65535, inclusive`);
    }
    return port;
  }
  if (/^\d+$/.test(port)) return resolvePort(Number(port), container, field);
  const named = container.ports?.find((p) => p.name === port);
  if (named === undefined) {
    throw new Error(
      `${field}: Invalid value: "${port}": must be a port number or the name of a container port`,
    );
  }
  return named.containerPort;
}

/**
 * Turns a V1Probe into a {@link ProbeAction}, resolving a named port against the container's ports.
 * exec probes can't run in our pods (they have no container filesystem), so they count as success.
 */
export function resolveProbeAction(
  probe: V1Probe,
  container: V1Container,
  field = 'readinessProbe',
): ProbeAction {
  if (probe.httpGet !== undefined) {
    const scheme = (probe.httpGet.scheme ?? 'HTTP').toUpperCase();
    if (scheme !== 'HTTP' && scheme !== 'HTTPS') {
      throw new Error(
        `${field}.httpGet.scheme: Unsupported value: "${probe.httpGet.scheme}": supported values: "HTTP", "HTTPS"`,
      );
    }
    return {
      kind: 'http',
      port: resolvePort(probe.httpGet.port, container, `${field}.httpGet.port`),
      path: probe.httpGet.path ?? '/',
      scheme: scheme === 'HTTPS' ? 'https' : 'http',
      ...(probe.httpGet.host ? { host: probe.httpGet.host } : {}),
    };
  }
  if (probe.tcpSocket !== undefined) {
    return {
      kind: 'tcp',
      port: resolvePort(probe.tcpSocket.port, container, `${field}.tcpSocket.port`),
      ...(probe.tcpSocket.host ? { host: probe.tcpSocket.host } : {}),
    };
  }
  if (probe.exec !== undefined || probe.grpc !== undefined) return { kind: 'exec' };
  throw new Error(`${field}: Required value: must specify a handler type`);
}

/** The outcome of one probe. */
export interface ProbeOutcome {
  readonly success: boolean;
  readonly message: string;
}

/** Where a probe's connection starts from: this process, or a prober inside a node namespace. */
export interface ProbeTransport {
  probe(action: ProbeAction, podIp: string, timeoutMs: number): Promise<ProbeOutcome>;
  close(): Promise<void>;
}

function probeHttp(
  action: Extract<ProbeAction, { kind: 'http' }>,
  host: string,
  timeoutMs: number,
): Promise<ProbeOutcome> {
  const request = action.scheme === 'https' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    // Like the kubelet: certificates aren't verified and any status from 200 to 399 passes.
    const req = request(
      {
        host,
        port: action.port,
        path: action.path,
        method: 'GET',
        timeout: timeoutMs,
        rejectUnauthorized: false,
        agent: false,
      },
      (response) => {
        response.resume();
        const status = response.statusCode ?? 0;
        resolve({ success: status >= 200 && status < 400, message: `HTTP probe returned ${status}` });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs}ms`)));
    req.on('error', (error) =>
      resolve({
        success: false,
        message: `Get "${action.scheme}://${host}:${action.port}${action.path}": ${error.message}`,
      }),
    );
    req.end();
  });
}

function probeTcp(port: number, host: string, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: timeoutMs });
    socket.once('connect', () => {
      socket.destroy();
      resolve({ success: true, message: `dial tcp ${host}:${port}: connected` });
    });
    socket.once('timeout', () => socket.destroy(new Error(`i/o timeout after ${timeoutMs}ms`)));
    socket.once('error', (error) =>
      resolve({ success: false, message: `dial tcp ${host}:${port}: ${error.message}` }),
    );
  });
}

/** Runs one probe from the current network namespace. */
export function runProbe(action: ProbeAction, podIp: string, timeoutMs: number): Promise<ProbeOutcome> {
  switch (action.kind) {
    case 'http':
      return probeHttp(action, action.host ?? podIp, timeoutMs);
    case 'tcp':
      return probeTcp(action.port, action.host ?? podIp, timeoutMs);
    case 'exec':
      return Promise.resolve({ success: true, message: 'exec probes are approximated as success' });
  }
}

/** Probes from this process's network namespace (control-plane mode, or tests on 127.0.0.1). */
export const directProbeTransport: ProbeTransport = {
  probe: runProbe,
  close: () => Promise.resolve(),
};

interface ProberRequest {
  readonly id: number;
  readonly action: ProbeAction;
  readonly podIp: string;
  readonly timeoutMs: number;
}

/**
 * Probes from inside a node's network namespace, where pod IPs route, by keeping one small Node
 * process there (this file run with `--serve`) that takes JSON-line requests. One process per node
 * is far cheaper than an `ip netns exec` per probe.
 */
export class NamespaceProbeTransport implements ProbeTransport {
  readonly namespace: string;
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, (outcome: ProbeOutcome) => void>();
  #nextId = 1;

  constructor(namespace: string, ipPath: string = defaultIpPath) {
    this.namespace = namespace;
    this.#child = spawn(
      ipPath,
      ['netns', 'exec', namespace, process.execPath, new URL(import.meta.url).pathname, '--serve'],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    createInterface({ input: this.#child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const reply = JSON.parse(line) as { id: number } & ProbeOutcome;
      this.#pending.get(reply.id)?.({ success: reply.success, message: reply.message });
      this.#pending.delete(reply.id);
    });
    this.#child.once('exit', (code, signal) => {
      for (const settle of this.#pending.values()) {
        settle({ success: false, message: `prober in ${namespace} exited (${signal ?? code})` });
      }
      this.#pending.clear();
    });
  }

  probe(action: ProbeAction, podIp: string, timeoutMs: number): Promise<ProbeOutcome> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) {
      return Promise.resolve({ success: false, message: `prober in ${this.namespace} is not running` });
    }
    const id = this.#nextId++;
    const request: ProberRequest = { id, action, podIp, timeoutMs };
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      this.#child.stdin?.write(`${JSON.stringify(request)}\n`);
    });
  }

  async close(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.stdin?.end();
    await exited;
  }
}

/** One container's readiness as the prober sees it. */
export interface ContainerReadiness {
  readonly container: string;
  readonly state: ReadinessState;
  readonly lastMessage?: string;
}

/**
 * Runs the readiness probes of one pod's containers on their schedules and reports every change of
 * the pod's overall readiness (all containers ready). A container without a readiness probe is
 * ready as soon as it started, as upstream has it. `msPerSecond` lets tests run probe periods fast.
 */
export class PodReadinessProber {
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #states = new Map<string, ContainerReadiness>();
  #stopped = false;
  #lastReported: boolean | undefined;

  constructor(options: {
    podIp: string;
    containers: readonly V1Container[];
    transport: ProbeTransport;
    onReadinessChange: (ready: boolean, containers: readonly ContainerReadiness[]) => void;
    msPerSecond?: number;
  }) {
    const msPerSecond = options.msPerSecond ?? 1000;
    const startedAt = Date.now();
    options.containers.forEach((container, index) => {
      const probe = container.readinessProbe;
      if (probe === undefined) {
        this.#states.set(container.name, {
          container: container.name,
          state: { ...initialReadinessState, ready: true },
        });
        return;
      }
      const field = `spec.containers[${index}].readinessProbe`;
      const timing = probeTiming(probe, field);
      const action = resolveProbeAction(probe, container, field);
      this.#states.set(container.name, { container: container.name, state: initialReadinessState });
      const runAt = (dueMs: number): void => {
        const timer = setTimeout(
          async () => {
            this.#timers.delete(timer);
            if (this.#stopped) return;
            const probedAt = Date.now();
            const outcome = await options.transport.probe(
              action,
              options.podIp,
              timing.timeoutSeconds * msPerSecond,
            );
            if (this.#stopped) return;
            const previous = this.#states.get(container.name)?.state ?? initialReadinessState;
            this.#states.set(container.name, {
              container: container.name,
              state: recordProbeResult(previous, outcome.success, timing),
              lastMessage: outcome.message,
            });
            this.#report(options.onReadinessChange);
            runAt(nextProbeDueMs(startedAt, probedAt, timing, msPerSecond));
          },
          Math.max(0, dueMs - Date.now()),
        );
        this.#timers.add(timer);
      };
      runAt(nextProbeDueMs(startedAt, undefined, timing, msPerSecond));
    });
    queueMicrotask(() => this.#report(options.onReadinessChange));
  }

  /** Current overall readiness: every container ready. */
  get ready(): boolean {
    return [...this.#states.values()].every((c) => c.state.ready);
  }

  #report(onReadinessChange: (ready: boolean, containers: readonly ContainerReadiness[]) => void): void {
    if (this.#stopped) return;
    const ready = this.ready;
    if (ready === this.#lastReported) return;
    this.#lastReported = ready;
    onReadinessChange(ready, [...this.#states.values()]);
  }

  /** Stops probing; no callback fires afterwards. */
  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }
}

async function serveProbeRequests(): Promise<void> {
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    const request = JSON.parse(line) as ProberRequest;
    runProbe(request.action, request.podIp, request.timeoutMs).then((outcome) => {
      process.stdout.write(`${JSON.stringify({ id: request.id, ...outcome })}\n`);
    });
  }
}

if (import.meta.main && process.argv.includes('--serve')) {
  serveProbeRequests().catch((error: unknown) => {
    process.stderr.write(`prober: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
