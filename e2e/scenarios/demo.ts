/**
 * The seeds' ClusterIP demo (examples/clusterip-demo: a Deployment of 3, a standalone pod with the
 * same label and the Service `clusteripservice`) as a fixture the traffic scenarios share, and the
 * request loops they send from the in-cluster client.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import type { ScenarioDriver } from './driver.ts';
import { eventually, hostInBody, mentionsAddress, rulesOfEveryNode } from './service-checks.ts';

const demoDirectory = new URL('../../examples/clusterip-demo/', import.meta.url);

/** The demo's Service, selector and backend count, as the seed defines them. */
export const DEMO_SERVICE = 'clusteripservice';
export const DEMO_SELECTOR = { example: 'forservice' } as const;
export const DEMO_BACKENDS = 4;
/** The demo Service's port and its pods' port. */
export const DEMO_PORT = 8080;
export const DEMO_TARGET_PORT = 80;

/** A ready demo pod. */
export interface DemoPod {
  name: string;
  ip: string;
}

/** The demo, up and programmed on every node. */
export interface Demo {
  clusterIp: string;
  pods: DemoPod[];
}

async function demoManifests(): Promise<string> {
  const files = ['deployment.yaml', 'pod.yaml', 'service.yaml'];
  const texts = await Promise.all(files.map((file) => readFile(new URL(file, demoDirectory), 'utf8')));
  return texts.join('\n---\n');
}

/** The demo pods that are Ready and not being deleted. */
async function readyDemoPods(driver: ScenarioDriver): Promise<DemoPod[]> {
  const out = await driver.read(
    'pods',
    `{range .items[?(@.metadata.labels.example=="${DEMO_SELECTOR.example}")]}{.metadata.name}{" "}{.status.podIP}{" "}{.status.conditions[?(@.type=="Ready")].status}{" "}{.metadata.deletionTimestamp}{"\\n"}{end}`,
  );
  return out
    .split('\n')
    .map((line) => line.trim().split(' '))
    .filter((fields) => fields.length === 3 && fields[1] !== '' && fields[2] === 'True')
    .map(([name = '', ip = '']) => ({ name, ip }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Applies the demo (a no-op when it is there already; recreates the standalone pod when a
 * scenario deleted it) and waits until its 4 pods are Ready and in the rules of every node.
 */
export async function ensureDemo(driver: ScenarioDriver): Promise<Demo> {
  await driver.apply(await demoManifests());
  // The seed's image is pulled on a real cluster; the first start can take a while.
  const pods = await eventually(
    `${DEMO_BACKENDS} ready demo pods`,
    async () => {
      const ready = await readyDemoPods(driver);
      return ready.length === DEMO_BACKENDS ? ready : undefined;
    },
    180_000,
  );
  const clusterIp = await driver.read(`service/${DEMO_SERVICE}`, '{.spec.clusterIP}');
  assert.match(clusterIp, /^\d+\.\d+\.\d+\.\d+$/, `service/${DEMO_SERVICE} has a ClusterIP`);
  await eventually('the demo pods in the rules of every node', async () => {
    for (const rules of (await rulesOfEveryNode(driver)).values()) {
      if (!pods.every((pod) => mentionsAddress(rules, pod.ip))) return undefined;
    }
    return true;
  });
  return { clusterIp, pods };
}

/** One request from the in-cluster client. */
export interface ClientRequest {
  /** curl's exit code: 0 answered, 7 refused, 28 timed out. */
  exitCode: number;
  /** The pod in the answer body, when there was one. */
  host: string | undefined;
  /** curl's own `time_total`, free of the time it takes to reach the client. */
  seconds: number;
  /** What curl printed (body or error), for messages. */
  output: string;
}

const REQUEST_LOOP =
  'n=0; while [ "$n" -lt "$1" ]; do curl -sS -m "$2" -w " #time=%{time_total}" "$3" 2>&1; echo " #exit=$?"; n=$((n+1)); done';

/**
 * Sends `count` GETs to `url` from the in-cluster client in one command (one round trip to the
 * client however many requests: `kubectl exec` costs a second on a real cluster).
 */
export async function requestsFromClient(
  driver: ScenarioDriver,
  url: string,
  count: number,
  timeoutSeconds = 3,
): Promise<ClientRequest[]> {
  const out = await driver.execInClient([
    'sh',
    '-c',
    REQUEST_LOOP,
    'sh',
    String(count),
    String(timeoutSeconds),
    url,
  ]);
  const requests: ClientRequest[] = [];
  for (const match of out.matchAll(/([\s\S]*?) #time=([\d.]+) #exit=(\d+)\n/g)) {
    const output = match[1] ?? '';
    requests.push({
      exitCode: Number(match[3]),
      host: hostInBody(output),
      seconds: Number(match[2]),
      output: output.trim(),
    });
  }
  assert.equal(requests.length, count, `expected ${count} results from the client, got: ${out}`);
  return requests;
}

/** The pods answering `count` requests to `url` from the in-cluster client; every request must succeed. */
export async function hostsFromClient(driver: ScenarioDriver, url: string, count: number): Promise<string[]> {
  const requests = await requestsFromClient(driver, url, count);
  return requests.map((request, index) => {
    assert.ok(
      request.exitCode === 0 && request.host !== undefined,
      `request ${index + 1} to ${url}: exit ${request.exitCode}: ${request.output}`,
    );
    return request.host;
  });
}

/** The pod answering on `ip` directly (its own name in the body: the seed's pod says `pod_example`). */
export async function hostOfPod(driver: ScenarioDriver, ip: string): Promise<string> {
  const [host] = await hostsFromClient(driver, `http://${ip}:${DEMO_TARGET_PORT}/`, 1);
  assert.ok(host !== undefined);
  return host;
}

/** Waits until `url` answers the in-cluster client (the agents have programmed it). */
export async function waitUntilClientReaches(driver: ScenarioDriver, url: string): Promise<void> {
  await eventually(`${url} to answer the in-cluster client`, async () => {
    const [request] = await requestsFromClient(driver, url, 1, 2);
    return request?.exitCode === 0 ? true : undefined;
  });
}

/** Waits until `url` answers the outside client. */
export async function waitUntilOutsideReaches(driver: ScenarioDriver, url: string): Promise<void> {
  await eventually(`${url} to answer from outside`, async () =>
    (await driver.fetchFromOutside(url, 2)).curlExitCode === 0 ? true : undefined,
  );
}

/** The pods answering `count` GETs to `url` from outside the cluster; every request must succeed. */
export async function hostsFromOutside(
  driver: ScenarioDriver,
  url: string,
  count: number,
): Promise<string[]> {
  const hosts: string[] = [];
  for (let index = 0; index < count; index += 1) {
    const response = await driver.fetchFromOutside(url, 3);
    const host = hostInBody(response.body);
    assert.ok(
      response.curlExitCode === 0 && host !== undefined,
      `request ${index + 1} to ${url} from outside: exit ${response.curlExitCode}: ${response.body}`,
    );
    hosts.push(host);
  }
  return hosts;
}
