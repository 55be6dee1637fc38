/**
 * Benchmark of the initial list: how long a controller takes from start to synced caches when the
 * cluster holds BENCH_PODS pods (default 100,000) behind BENCH_SERVICES Services (default 10,000)
 * on 50 nodes, and where the time goes. The local API server runs in a child process, as a
 * separate kube-apiserver would, and each informer phase in a fresh child process of its own, as a
 * starting controller manager would. Prints JSON:
 * - rawLists: GET /api/v1/pods over HTTPS with keep-alive from this process, page by page (`limit`
 *   from BENCH_PAGE_LIMITS, default "500,0", 0 meaning one unpaginated answer; "" skips them), each
 *   page decoded with JSON.parse; every limit twice, the first list of all finding no encoding
 *   cached on the server (`encodingsCached`). Wall time, pages, bytes, and the CPU time each
 *   process spent (user+system, from process.cpuUsage). With BENCH_RAW_RETAIN=1 the decoded items
 *   are kept until the list ends, as a cache would keep them, which shows what heap growth costs;
 * - podInformer: the endpoint controllers' pod informer alone (with its indexes and transform),
 *   start to synced, and the V8 heap right after: in use, and live after a full collection;
 * - endpointInformers: all five informers of the endpoint controllers at once, the same figures;
 * - reconcile (unless BENCH_RECONCILE=0): the Endpoints, EndpointSlice and mirroring controllers
 *   started on those synced caches at `--concurrent-service-endpoint-syncs` BENCH_CONCURRENCY
 *   (default 5), until every Service has its Endpoints and every pod is in a slice: the time, the
 *   writes the server took, and the CPU of each side.
 *
 * The pods are shaped like a Deployment's pods on a real cluster: generateName, pod-template-hash
 * label, an ownerReference to their ReplicaSet (which exists), a container with ports, probes,
 * resources, env and a service-account volume, and a Running status with five conditions and a
 * container status. They are put into the store directly, so no encoding of them is cached before
 * the first list. With BENCH_CPU_PROF set to a directory, the server and client processes write
 * CPU profiles there; BENCH_CLIENT_NODE_FLAGS passes Node flags to the client processes.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { Agent, request } from 'node:https';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { createEndpointControllers } from '../controllers/endpoint-controllers.ts';
import { allEndpointInformers } from '../controllers/endpoint-informers.ts';
import { podIP } from '../controllers/endpoint-test-cluster.ts';
import { createLogger } from '../controllers/runtime/logging.ts';
import { startApiServer } from '../e2e/apiserver/index.ts';
import type { JsonObject } from '../e2e/apiserver/patch.ts';

const PODS = Number(process.env['BENCH_PODS'] ?? 100_000);
const SERVICES = Number(process.env['BENCH_SERVICES'] ?? 10_000);
const PAGE_LIMITS = (process.env['BENCH_PAGE_LIMITS'] ?? '500,0')
  .split(',')
  .filter((limit) => limit !== '')
  .map(Number);
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 5);
const RECONCILE = process.env['BENCH_RECONCILE'] !== '0';
const RETAIN_RAW_ITEMS = process.env['BENCH_RAW_RETAIN'] === '1';
const CPU_PROFILE_DIR = process.env['BENCH_CPU_PROF'];
/** Extra Node flags for the client processes (e.g. `--max-semi-space-size=64`), space-separated. */
const CLIENT_NODE_FLAGS = (process.env['BENCH_CLIENT_NODE_FLAGS'] ?? '')
  .split(' ')
  .filter((flag) => flag !== '');
const NODES = 50;
const ZONES = ['zone-a', 'zone-b', 'zone-c'];
/** Argument that makes this file the API server process of the benchmark. */
const SERVER_FLAG = '--serve-api';
/** Argument that makes this file a client process of the benchmark (see {@link clientInChild}). */
const CLIENT_FLAG = '--client';

/** Requests from the benchmark to the API server process. */
type ServerRequest =
  | { kind: 'populate' }
  | { kind: 'cpu' }
  | { kind: 'watchWrites'; services: number; pods: number }
  | { kind: 'writesDone' }
  | { kind: 'close' };

/** What the server process answers to `populate`. */
interface Populated {
  url: string;
  token: string;
  caPem: string;
  kubeconfigPath: string;
  populateSeconds: number;
}

/** Writes the server took until the controllers had published every pod. */
interface WritesDone {
  doneAt: number;
  endpointSliceWrites: number;
  endpointsWrites: number;
  otherWrites: number;
}

const now = () => performance.timeOrigin + performance.now();

function round(value: number, digits = 2): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** CPU seconds (user + system) of this process since `since`. */
function cpuSecondsSince(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1e6;
}

function timestamp(secondsAgo: number): string {
  return new Date(Date.now() - secondsAgo * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A Deployment's pod as a kubelet-reported, Running and Ready object. */
function benchPod(index: number, service: number, replicaSetUid: string, templateHash: string): JsonObject {
  const app = `svc-${service}`;
  const node = `node-${index % NODES}`;
  const ip = podIP(index);
  const started = timestamp(3600);
  const condition = (type: string) => ({
    type,
    status: 'True',
    lastProbeTime: null,
    lastTransitionTime: started,
  });
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${app}-${templateHash}-${index.toString(36).padStart(5, '0')}`,
      generateName: `${app}-${templateHash}-`,
      namespace: 'default',
      uid: randomUUID(),
      creationTimestamp: started,
      labels: { app, tier: 'bench', 'pod-template-hash': templateHash },
      annotations: { 'kubectl.kubernetes.io/restartedAt': started },
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          name: `${app}-${templateHash}`,
          uid: replicaSetUid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      nodeName: node,
      containers: [
        {
          name: 'app',
          image: 'registry.k8s.io/e2e-test-images/agnhost:2.53',
          args: ['netexec', '--http-port=9376'],
          ports: [{ name: 'http', containerPort: 9376, protocol: 'TCP' }],
          env: [
            { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
          ],
          resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '64Mi' } },
          readinessProbe: {
            httpGet: { path: '/healthz', port: 'http', scheme: 'HTTP' },
            periodSeconds: 10,
            timeoutSeconds: 1,
            successThreshold: 1,
            failureThreshold: 3,
          },
          volumeMounts: [
            {
              name: 'kube-api-access',
              readOnly: true,
              mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
            },
          ],
          terminationMessagePath: '/dev/termination-log',
          terminationMessagePolicy: 'File',
          imagePullPolicy: 'IfNotPresent',
        },
      ],
      volumes: [
        {
          name: 'kube-api-access',
          projected: {
            defaultMode: 420,
            sources: [
              { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
              { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
            ],
          },
        },
      ],
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: 'default',
      serviceAccount: 'default',
      schedulerName: 'default-scheduler',
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
      priority: 0,
      securityContext: {},
      tolerations: [
        {
          key: 'node.kubernetes.io/not-ready',
          operator: 'Exists',
          effect: 'NoExecute',
          tolerationSeconds: 300,
        },
        {
          key: 'node.kubernetes.io/unreachable',
          operator: 'Exists',
          effect: 'NoExecute',
          tolerationSeconds: 300,
        },
      ],
    },
    status: {
      phase: 'Running',
      qosClass: 'Burstable',
      hostIP: `198.19.255.${index % NODES}`,
      hostIPs: [{ ip: `198.19.255.${index % NODES}` }],
      podIP: ip,
      podIPs: [{ ip }],
      startTime: started,
      conditions: [
        condition('PodReadyToStartContainers'),
        condition('Initialized'),
        condition('Ready'),
        condition('ContainersReady'),
        condition('PodScheduled'),
      ],
      containerStatuses: [
        {
          name: 'app',
          image: 'registry.k8s.io/e2e-test-images/agnhost:2.53',
          imageID:
            'registry.k8s.io/e2e-test-images/agnhost@sha256:99c6b4bb4a1e1df3f0b3752168c89358794d02258ebebc26bf21c29399011a85',
          containerID: `containerd://${randomUUID().replaceAll('-', '')}`,
          ready: true,
          started: true,
          restartCount: 0,
          state: { running: { startedAt: started } },
        },
      ],
    },
  };
}

/** API server side: the server and its fixtures, put straight into the store (no REST per object). */
async function serveInChild(): Promise<void> {
  const server = await startApiServer({ historyWindow: 50_000, bookmarkIntervalMs: 60_000 });
  const { store } = server;
  let expectedSlicedPods = 0;
  let expectedEndpoints = 0;
  let writes: WritesDone = { doneAt: 0, endpointSliceWrites: 0, endpointsWrites: 0, otherWrites: 0 };
  let stopCounting: (() => void) | undefined;
  let whenDone: Promise<void> = Promise.resolve();

  const populate = (): Populated => {
    const started = now();
    for (let n = 0; n < NODES; n++) {
      store.put('/nodes', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: `node-${n}`,
          uid: randomUUID(),
          creationTimestamp: timestamp(86_400),
          labels: {
            'kubernetes.io/hostname': `node-${n}`,
            'topology.kubernetes.io/zone': ZONES[n % ZONES.length]!,
          },
        },
        spec: { podCIDR: `198.18.${n}.0/24` },
        status: {
          addresses: [{ type: 'InternalIP', address: `198.19.255.${n}` }],
          conditions: [
            {
              type: 'Ready',
              status: 'True',
              lastHeartbeatTime: timestamp(5),
              lastTransitionTime: timestamp(86_400),
            },
          ],
        },
      });
    }
    const podsPerService = Math.ceil(PODS / SERVICES);
    let pods = 0;
    for (let s = 0; s < SERVICES; s++) {
      const app = `svc-${s}`;
      const templateHash = (s * 7919).toString(36).padStart(8, 'x').slice(-8);
      const clusterIP = `10.96.${s >> 8}.${s & 255}`;
      store.put('/services', {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: app, namespace: 'default', uid: randomUUID(), creationTimestamp: timestamp(3700) },
        spec: {
          type: 'ClusterIP',
          clusterIP,
          clusterIPs: [clusterIP],
          ipFamilies: ['IPv4'],
          ipFamilyPolicy: 'SingleStack',
          internalTrafficPolicy: 'Cluster',
          sessionAffinity: 'None',
          selector: { app },
          ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 9376 }],
        },
        status: { loadBalancer: {} },
      });
      const replicaSetUid = randomUUID();
      store.put('apps/replicasets', {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        metadata: {
          name: `${app}-${templateHash}`,
          namespace: 'default',
          uid: replicaSetUid,
          creationTimestamp: timestamp(3700),
          labels: { app, 'pod-template-hash': templateHash },
        },
        spec: {
          replicas: podsPerService,
          selector: { matchLabels: { app, 'pod-template-hash': templateHash } },
          template: {
            metadata: { labels: { app, 'pod-template-hash': templateHash } },
            spec: { containers: [] },
          },
        },
      });
      for (let p = 0; p < podsPerService && pods < PODS; p++, pods++) {
        store.put('/pods', benchPod(pods, s, replicaSetUid, templateHash));
      }
    }
    return {
      url: server.url,
      token: server.token,
      caPem: server.caPem,
      kubeconfigPath: server.kubeconfigPath,
      populateSeconds: (now() - started) / 1000,
    };
  };

  /** Counts the controllers' writes until every Service has Endpoints and every pod is in a slice. */
  const watchWrites = (services: number, pods: number): void => {
    expectedEndpoints = services;
    expectedSlicedPods = pods;
    writes = { doneAt: 0, endpointSliceWrites: 0, endpointsWrites: 0, otherWrites: 0 };
    const endpointsSeen = new Set<string>();
    const slicedBySlice = new Map<string, number>();
    let sliced = 0;
    let finish: () => void = () => {};
    whenDone = new Promise((resolve) => {
      finish = resolve;
    });
    stopCounting = store.onEvent((event) => {
      const name = (event.object.metadata as { name: string }).name;
      if (event.resourceKey === 'discovery.k8s.io/endpointslices') {
        writes.endpointSliceWrites += 1;
        const count =
          event.type === 'DELETED' ? 0 : ((event.object as { endpoints?: unknown[] }).endpoints ?? []).length;
        sliced += count - (slicedBySlice.get(name) ?? 0);
        slicedBySlice.set(name, count);
      } else if (event.resourceKey === '/endpoints') {
        writes.endpointsWrites += 1;
        if (event.type === 'DELETED') endpointsSeen.delete(name);
        else endpointsSeen.add(name);
      } else {
        writes.otherWrites += 1;
      }
      if (writes.doneAt === 0 && sliced >= expectedSlicedPods && endpointsSeen.size >= expectedEndpoints) {
        writes.doneAt = now();
        finish();
      }
    });
  };

  const handle = async (message: ServerRequest): Promise<unknown> => {
    switch (message.kind) {
      case 'populate':
        return populate();
      case 'cpu':
        return process.cpuUsage();
      case 'watchWrites':
        watchWrites(message.services, message.pods);
        return {};
      case 'writesDone':
        await whenDone;
        stopCounting?.();
        return writes;
      case 'close':
        await server.close();
        return {};
    }
  };

  process.on('message', (message: ServerRequest) => {
    handle(message).then(
      (answer) => {
        process.send!(answer);
        if (message.kind === 'close') process.disconnect();
      },
      (error: unknown) => process.send!({ error: String(error) }),
    );
  });
  process.send!({ ready: true });
}

/** Which informers a client process starts. */
type ClientPhase = 'pods' | 'endpoints';

/** The heap in use after a full garbage collection (the process runs with --expose-gc). */
function liveHeapBytes(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed;
}

/** What a client process reports once its informers have synced. */
interface ClientSynced {
  seconds: number;
  clientCpuSeconds: number;
  heapUsedMiB: number;
  /** After a full collection: what the caches really hold. */
  heapLiveMiB: number;
  cachedPods: number;
}

/**
 * Client side, one process per phase so each starts with an empty heap, as a controller manager
 * does: `pods` syncs the endpoint controllers' pod informer alone; `endpoints` syncs all five
 * informers, then on `run` starts the controllers and on `stop` reports their CPU time and stops.
 */
async function clientInChild(phase: ClientPhase, kubeconfigPath: string): Promise<void> {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  const logger = createLogger({ level: 'error' });
  const endpointControllers = createEndpointControllers(kubeConfig, logger, {
    concurrentServiceEndpointSyncs: CONCURRENCY,
  });
  const all = allEndpointInformers(endpointControllers.informers);
  const informers = phase === 'pods' ? [endpointControllers.informers.pods] : all;
  const messages: string[] = [];
  let wake: () => void = () => {};
  process.on('message', (message: string) => {
    messages.push(message);
    wake();
  });
  const nextMessage = async (): Promise<string> => {
    while (messages.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    return messages.shift()!;
  };
  let cpu = process.cpuUsage();
  const started = now();
  for (const informer of informers) informer.start();
  await Promise.all(informers.map((informer) => informer.waitForSync()));
  const synced: ClientSynced = {
    seconds: round((now() - started) / 1000),
    clientCpuSeconds: round(cpuSecondsSince(cpu)),
    heapUsedMiB: round(process.memoryUsage().heapUsed / 2 ** 20, 0),
    heapLiveMiB: round(liveHeapBytes() / 2 ** 20, 0),
    cachedPods: endpointControllers.informers.pods.list().length,
  };
  process.send!(synced);
  if (phase === 'endpoints' && (await nextMessage()) === 'run') {
    cpu = process.cpuUsage();
    const runAt = now();
    for (const controller of endpointControllers.controllers) controller.run();
    process.send!({ runAt });
    await nextMessage();
    process.send!({ clientCpuSeconds: round(cpuSecondsSince(cpu)) });
    await Promise.all(endpointControllers.controllers.map((controller) => controller.stop(5_000)));
  } else if (phase === 'endpoints') {
    process.send!({});
  }
  await Promise.all(informers.map((informer) => informer.stop()));
  // Kept-alive connections would hold the process for as long as the server keeps them open.
  process.exit(0);
}

/** One GET over a kept-alive connection; resolves with the body. */
function getRaw(agent: Agent, target: Populated, path: string): Promise<Buffer> {
  const url = new URL(target.url + path);
  return new Promise((resolve, reject) => {
    const headers = { Authorization: `Bearer ${target.token}`, Accept: 'application/json' };
    const req = request(url, { agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        if (res.statusCode === 200) resolve(body);
        else reject(new Error(`GET ${path}: ${res.statusCode} ${body.toString('utf8').slice(0, 200)}`));
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Node flags for a child process: a CPU profile named `name` when BENCH_CPU_PROF is set. */
function profileArgs(name: string): string[] {
  return CPU_PROFILE_DIR === undefined
    ? []
    : ['--cpu-prof', '--cpu-prof-dir', CPU_PROFILE_DIR, '--cpu-prof-name', `${name}.cpuprofile`];
}

async function runBenchmark(): Promise<void> {
  const server: ChildProcess = fork(fileURLToPath(import.meta.url), [SERVER_FLAG], {
    stdio: 'inherit',
    execArgv: profileArgs('list-server'),
  });
  // The benchmark must not leave the server behind, whatever ends it.
  process.once('exit', () => server.kill('SIGKILL'));
  const ask = <T>(message: ServerRequest): Promise<T> =>
    new Promise((resolve, reject) => {
      server.once('message', (answer: T & { error?: string }) =>
        answer.error === undefined ? resolve(answer) : reject(new Error(answer.error)),
      );
      server.send(message);
    });
  await new Promise((resolve) => server.once('message', resolve));
  const target = await ask<Populated>({ kind: 'populate' });
  const serverCpuSince = async (since: NodeJS.CpuUsage) => {
    const used = await ask<NodeJS.CpuUsage>({ kind: 'cpu' });
    return (used.user - since.user + used.system - since.system) / 1e6;
  };

  const rawLists = [];
  for (const pass of [1, 2]) {
    for (const limit of PAGE_LIMITS) {
      const encodingsCached = pass > 1 || limit !== PAGE_LIMITS[0];
      const agent = new Agent({ keepAlive: true, ca: target.caPem, maxSockets: 1 });
      const serverCpu = await ask<NodeJS.CpuUsage>({ kind: 'cpu' });
      const clientCpu = process.cpuUsage();
      const started = now();
      let items = 0;
      const retained: unknown[][] = [];
      let pages = 0;
      let bytes = 0;
      let token = '';
      do {
        const query = new URLSearchParams();
        if (limit > 0) query.set('limit', String(limit));
        if (token !== '') query.set('continue', token);
        const page = await getRaw(agent, target, `/api/v1/pods?${query}`);
        const list = JSON.parse(page.toString('utf8')) as {
          items: unknown[];
          metadata: { continue?: string };
        };
        items += list.items.length;
        if (RETAIN_RAW_ITEMS) retained.push(list.items);
        pages += 1;
        bytes += page.length;
        token = list.metadata.continue ?? '';
      } while (token !== '');
      const seconds = (now() - started) / 1000;
      agent.destroy();
      if (items !== PODS)
        throw new Error(`list with limit ${limit} returned ${items} pods, expected ${PODS}`);
      rawLists.push({
        limit,
        encodingsCached,
        seconds: round(seconds),
        pages,
        jsonMiB: round(bytes / 2 ** 20, 1),
        serverCpuSeconds: round(await serverCpuSince(serverCpu)),
        clientCpuSeconds: round(cpuSecondsSince(clientCpu)),
        itemsRetained: retained.length > 0,
      });
    }
  }

  const startClient = (phase: ClientPhase) => {
    const client = fork(fileURLToPath(import.meta.url), [CLIENT_FLAG, phase, target.kubeconfigPath], {
      stdio: 'inherit',
      execArgv: ['--expose-gc', ...CLIENT_NODE_FLAGS, ...profileArgs(`list-client-${phase}`)],
    });
    process.once('exit', () => client.kill('SIGKILL'));
    const next = <T>(): Promise<T> =>
      new Promise((resolve, reject) => {
        client.once('message', (answer: T & { error?: string }) =>
          answer.error === undefined ? resolve(answer) : reject(new Error(answer.error)),
        );
      });
    return { client, next };
  };
  const timeClientSync = async (phase: ClientPhase) => {
    const serverCpu = await ask<NodeJS.CpuUsage>({ kind: 'cpu' });
    const { client, next } = startClient(phase);
    const synced = await next<ClientSynced>();
    return { client, next, synced: { ...synced, serverCpuSeconds: round(await serverCpuSince(serverCpu)) } };
  };

  const pods = await timeClientSync('pods');
  await once(pods.client, 'exit');
  if (pods.synced.cachedPods !== PODS) throw new Error(`pod informer holds ${pods.synced.cachedPods} pods`);

  if (RECONCILE) await ask({ kind: 'watchWrites', services: SERVICES, pods: PODS });
  const endpoints = await timeClientSync('endpoints');
  let reconcile: Record<string, unknown> | undefined;
  if (RECONCILE) {
    const serverCpu = await ask<NodeJS.CpuUsage>({ kind: 'cpu' });
    endpoints.client.send('run');
    const { runAt } = await endpoints.next<{ runAt: number }>();
    const done = await ask<WritesDone>({ kind: 'writesDone' });
    endpoints.client.send('stop');
    const { clientCpuSeconds } = await endpoints.next<{ clientCpuSeconds: number }>();
    const seconds = (done.doneAt - runAt) / 1000;
    reconcile = {
      concurrentServiceEndpointSyncs: CONCURRENCY,
      seconds: round(seconds),
      endpointSliceWrites: done.endpointSliceWrites,
      endpointsWrites: done.endpointsWrites,
      otherWrites: done.otherWrites,
      writesPerSecond: round(
        (done.endpointSliceWrites + done.endpointsWrites + done.otherWrites) / seconds,
        0,
      ),
      serverCpuSeconds: round(await serverCpuSince(serverCpu)),
      clientCpuSeconds,
    };
  } else {
    endpoints.client.send('stop');
    await endpoints.next();
  }
  await once(endpoints.client, 'exit');
  await ask({ kind: 'close' });
  await once(server, 'exit');

  process.stdout.write(
    `${JSON.stringify(
      {
        pods: PODS,
        services: SERVICES,
        nodes: NODES,
        populateSeconds: round(target.populateSeconds, 1),
        rawLists,
        podInformer: pods.synced,
        endpointInformers: endpoints.synced,
        ...(reconcile !== undefined && { reconcile }),
        loadAverage: (await import('node:os')).loadavg().map((load) => round(load)),
      },
      null,
      2,
    )}\n`,
  );
}

const clientFlagAt = process.argv.indexOf(CLIENT_FLAG);
if (process.argv.includes(SERVER_FLAG)) await serveInChild();
else if (clientFlagAt >= 0)
  await clientInChild(process.argv[clientFlagAt + 1] as ClientPhase, process.argv[clientFlagAt + 2]!);
else await runBenchmark();
