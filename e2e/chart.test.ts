/**
 * Tests of charts/portico with the real helm binary: lint, render with every values file in
 * charts/portico/ci/, validate each rendered object against the upstream Kubernetes OpenAPI schemas
 * (kubernetes-models), and check the properties the chart promises (least-privilege RBAC,
 * hardened pods, webhook TLS, schema errors that say what is wrong).
 */
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type {
  IMutatingWebhookConfiguration,
  IValidatingWebhookConfiguration,
} from 'kubernetes-models/admissionregistration.k8s.io/v1';
import {
  MutatingWebhookConfiguration,
  ValidatingWebhookConfiguration,
} from 'kubernetes-models/admissionregistration.k8s.io/v1';
import type { ICustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1';
import type { IDaemonSet, IDeployment } from 'kubernetes-models/apps/v1';
import { DaemonSet, Deployment } from 'kubernetes-models/apps/v1';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import type {
  IClusterRole,
  IClusterRoleBinding,
  IRole,
  IRoleBinding,
} from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import {
  ClusterRole,
  ClusterRoleBinding,
  Role,
  RoleBinding,
} from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import type { IConfigMap, IContainer, ISecret, IService } from 'kubernetes-models/v1';
import { ConfigMap, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { parse, parseAllDocuments } from 'yaml';
import { LOAD_BALANCER_IP_POOL_CRD } from '../api/loadbalancerippool.ts';
import { parseControllerManagerFlags } from '../controllers/portico-controller-manager.ts';
import { webhookConfigurations } from '../webhooks/configurations.ts';
import { VALIDATE_ENDPOINTS_PATH, VALIDATE_ENDPOINTSLICES_PATH } from '../webhooks/endpoints/validate.ts';
import { VALIDATE_LOADBALANCERIPPOOLS_PATH } from '../webhooks/loadbalancerippools/validate.ts';
import { MUTATE_SERVICES_PATH } from '../webhooks/services/mutate.ts';
import { VALIDATE_SERVICES_PATH } from '../webhooks/services/validate.ts';
import { REPO_ROOT, runHelm } from './tools/helm.ts';

const CHART = join(REPO_ROOT, 'charts', 'portico');
const CI_VALUES = join(CHART, 'ci');
const NAMESPACE = 'portico-system';
const RELEASE = 'portico';

/** A rendered object before {@link find} checks it against its kind's schema and types it. */
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

/** cert-manager's Certificate, as far as the tests read it (kubernetes-models has no cert-manager types). */
interface Certificate extends Manifest {
  spec: { secretName: string; dnsNames: string[]; issuerRef: Record<string, string> };
}

/** A Grafana dashboard, as far as the tests read it. */
interface GrafanaDashboard {
  panels: { targets: { expr: string }[] }[];
}

/** Prometheus Operator's ServiceMonitor, as far as the tests read it. */
interface ServiceMonitor extends Manifest {
  spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string }[] };
}

interface Validatable {
  validate(): void;
}

/** Models of every built-in kind the chart renders, keyed by `apiVersion/kind`. */
const MODELS: Record<string, new (data: never) => Validatable> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/Deployment': Deployment,
  'apps/v1/DaemonSet': DaemonSet,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': MutatingWebhookConfiguration,
  'admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration': ValidatingWebhookConfiguration,
  'apiextensions.k8s.io/v1/CustomResourceDefinition': CustomResourceDefinition,
};

/** Kinds from other projects' CRDs, which kubernetes-models does not ship; checked by hand below. */
const THIRD_PARTY_KINDS = new Set([
  'cert-manager.io/v1/Issuer',
  'cert-manager.io/v1/Certificate',
  'monitoring.coreos.com/v1/ServiceMonitor',
]);

const CLUSTER_SCOPED_KINDS = new Set([
  'ClusterRole',
  'ClusterRoleBinding',
  'MutatingWebhookConfiguration',
  'ValidatingWebhookConfiguration',
  'CustomResourceDefinition',
]);

function typeKey(manifest: Manifest): string {
  return `${manifest.apiVersion}/${manifest.kind}`;
}

async function render(valuesFile?: string, extraArgs: readonly string[] = []): Promise<Manifest[]> {
  const args = ['template', RELEASE, CHART, '--namespace', NAMESPACE, '--include-crds', ...extraArgs];
  if (valuesFile) args.push('--values', join(CI_VALUES, valuesFile));
  const result = await runHelm(args);
  assert.equal(result.code, 0, `helm template ${valuesFile ?? ''} failed:\n${result.stderr}`);
  return parseAllDocuments(result.stdout)
    .map((document) => document.toJS() as Manifest | null)
    .filter((manifest): manifest is Manifest => manifest !== null);
}

/**
 * The one object of `kind` (and `name`), validated against its upstream schema, so reading it
 * through that kind's type is sound.
 */
function find<T>(manifests: Manifest[], kind: string, name?: string): T {
  const found = manifests.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
  assert.equal(
    found.length,
    1,
    `expected exactly one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`,
  );
  const manifest = found[0]!;
  new (MODELS[typeKey(manifest)] ?? NoModel)(manifest as never).validate();
  return manifest as unknown as T;
}

/** Stands in for third-party kinds; their shape is checked by the tests that read them. */
class NoModel {
  validate(): void {}
}

function argsOf(container: IContainer): string[] {
  return container.args ?? [];
}

/** The first container of a Deployment's or DaemonSet's pod template. */
function firstContainer(workload: IDeployment | IDaemonSet): IContainer {
  return workload.spec!.template.spec!.containers[0]!;
}

const ciValuesFiles = (await readdir(CI_VALUES)).filter((file) => file.endsWith('.yaml')).sort();

describe('charts/portico: helm lint and render', () => {
  test('there are values files for default, nftables, cert-manager, ServiceMonitor and custom ranges', () => {
    for (const expected of [
      'default-values.yaml',
      'nftables-values.yaml',
      'cert-manager-values.yaml',
      'monitoring-values.yaml',
      'custom-ranges-values.yaml',
    ]) {
      assert.ok(ciValuesFiles.includes(expected), `charts/portico/ci/${expected} is missing`);
    }
  });

  for (const valuesFile of ciValuesFiles) {
    test(`helm lint --strict passes with ci/${valuesFile}`, async () => {
      const result = await runHelm([
        'lint',
        CHART,
        '--strict',
        '--namespace',
        NAMESPACE,
        '--values',
        join(CI_VALUES, valuesFile),
      ]);
      assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
      assert.match(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    });

    test(`every object rendered with ci/${valuesFile} is valid against the upstream schemas`, async () => {
      const manifests = await render(valuesFile);
      assert.ok(manifests.length > 10, `only ${manifests.length} objects rendered`);
      for (const manifest of manifests) {
        const key = typeKey(manifest);
        const where = `${key} ${manifest.metadata.name}`;
        const Model = MODELS[key];
        if (Model) {
          assert.doesNotThrow(() => new Model(manifest as never).validate(), where);
        } else {
          assert.ok(THIRD_PARTY_KINDS.has(key), `${where}: no schema to validate this kind against`);
          assert.equal(typeof manifest['spec'], 'object', `${where}: spec missing`);
        }
        if (CLUSTER_SCOPED_KINDS.has(manifest.kind)) {
          assert.equal(manifest.metadata.namespace, undefined, `${where} is cluster-scoped`);
        } else {
          assert.equal(manifest.metadata.namespace, NAMESPACE, `${where} must be in the release namespace`);
        }
      }
    });
  }
});

describe('charts/portico: NOTES', () => {
  test('tell what was installed, how to check it, and warn about values a real install must set', async () => {
    const result = await runHelm(['install', RELEASE, CHART, '--namespace', NAMESPACE, '--dry-run=client']);
    assert.equal(result.code, 0, result.stderr);
    const notes = result.stdout.slice(result.stdout.indexOf('NOTES:'));
    assert.match(notes, /kubectl -n portico-system rollout status deployment\/portico-controller-manager/);
    assert.match(notes, /kubectl -n portico-system rollout status daemonset\/portico-agent/);
    assert.match(notes, /ClusterIPs from 10\.96\.0\.0\/12 and NodePorts from 30000-32767/);
    assert.match(notes, /kubernetesAPI\.host is empty/);
    const kind = await runHelm([
      'install',
      RELEASE,
      CHART,
      '--namespace',
      NAMESPACE,
      '--dry-run=client',
      '--values',
      join(CI_VALUES, 'kind-values.yaml'),
    ]);
    assert.doesNotMatch(kind.stdout, /kubernetesAPI\.host is empty|agent\.clusterCIDR is empty/);
  });
});

describe('charts/portico: controller-manager', () => {
  test('runs 2 hardened replicas with leader election, anti-affinity, probes and a PodDisruptionBudget', async () => {
    const manifests = await render();
    const deployment = find<IDeployment>(manifests, 'Deployment');
    const pod = deployment.spec!.template.spec!;
    const container = firstContainer(deployment);
    assert.equal(deployment.spec!.replicas, 2);
    assert.ok(argsOf(container).includes('--leader-elect=true'));
    assert.ok(argsOf(container).includes('--health-addr=:8081'));
    assert.ok(argsOf(container).includes('--metrics-addr=:8080'));
    const antiAffinity = pod.affinity!.podAntiAffinity!.preferredDuringSchedulingIgnoredDuringExecution![0]!;
    assert.equal(antiAffinity.podAffinityTerm.topologyKey, 'kubernetes.io/hostname');
    assert.deepEqual(
      antiAffinity.podAffinityTerm.labelSelector!.matchLabels,
      deployment.spec!.selector.matchLabels,
    );
    assert.deepEqual(container.livenessProbe!.httpGet, { path: '/healthz', port: 'health' });
    assert.deepEqual(container.readinessProbe!.httpGet, { path: '/readyz', port: 'health' });
    const healthPort = container.ports!.find((port) => port.name === 'health');
    assert.equal(healthPort?.containerPort, 8081);
    assert.ok(container.resources!.requests!['cpu'] && container.resources!.limits!['memory']);
    assert.equal(pod.securityContext!.runAsNonRoot, true);
    assert.equal(pod.securityContext!.seccompProfile!.type, 'RuntimeDefault');
    assert.equal(container.securityContext!.readOnlyRootFilesystem, true);
    assert.equal(container.securityContext!.allowPrivilegeEscalation, false);
    assert.deepEqual(container.securityContext!.capabilities, { drop: ['ALL'] });
    const budget = find<IPodDisruptionBudget>(manifests, 'PodDisruptionBudget');
    assert.equal(budget.spec!.minAvailable, 1);
    assert.deepEqual(budget.spec!.selector!.matchLabels, deployment.spec!.selector.matchLabels);
  });

  test('passes the allocator ranges and the other custom values as flags', async () => {
    const manifests = await render('custom-ranges-values.yaml');
    const deployment = find<IDeployment>(manifests, 'Deployment');
    const container = firstContainer(deployment);
    const args = argsOf(container);
    assert.ok(args.includes('--service-cluster-ip-range=10.100.0.0/16,fd00:10:96::/108'), args.join(' '));
    assert.ok(args.includes('--service-node-port-range=31000-31999'), args.join(' '));
    assert.ok(args.includes('--max-endpoints-per-slice=50'), args.join(' '));
    assert.equal(deployment.spec!.replicas, 3);
    assert.equal(container.image, 'registry.example.com/portico/controller-manager:0.1.0-rc.1');
    assert.equal(container.imagePullPolicy, 'Always');
    assert.deepEqual(deployment.spec!.template.spec!.imagePullSecrets, [{ name: 'regcred' }]);
    const hard =
      deployment.spec!.template.spec!.affinity!.podAntiAffinity!
        .requiredDuringSchedulingIgnoredDuringExecution!;
    assert.equal(hard[0]!.topologyKey, 'kubernetes.io/hostname');
    assert.equal(find<IPodDisruptionBudget>(manifests, 'PodDisruptionBudget').spec!.minAvailable, 2);
  });

  test('the controller-manager accepts every flag the chart passes it', async () => {
    for (const valuesFile of [
      'default-values.yaml',
      'custom-ranges-values.yaml',
      'single-replica-values.yaml',
    ]) {
      const args = argsOf(firstContainer(find<IDeployment>(await render(valuesFile), 'Deployment')));
      // The kubelet expands $(POD_NAMESPACE) from the downward API before the process sees it.
      const expanded = args.map((arg) => arg.replace('$(POD_NAMESPACE)', NAMESPACE));
      const config = parseControllerManagerFlags(expanded, {});
      assert.notEqual(config, 'help');
      assert.equal(config === 'help' ? undefined : config.namespace, NAMESPACE, valuesFile);
    }
  });

  test('a single replica without leader election renders no PodDisruptionBudget', async () => {
    const manifests = await render('single-replica-values.yaml');
    const container = firstContainer(find<IDeployment>(manifests, 'Deployment'));
    assert.ok(argsOf(container).includes('--leader-elect=false'));
    assert.equal(manifests.filter((m) => m.kind === 'PodDisruptionBudget').length, 0);
  });
});

describe('charts/portico: agent', () => {
  test('runs on every node with host networking, NET_ADMIN and NET_RAW only, and the xtables lock', async () => {
    const manifests = await render();
    const daemonSet = find<IDaemonSet>(manifests, 'DaemonSet');
    const pod = daemonSet.spec!.template.spec!;
    const container = firstContainer(daemonSet);
    assert.equal(pod.hostNetwork, true);
    assert.equal(pod.dnsPolicy, 'ClusterFirstWithHostNet');
    assert.equal(pod.priorityClassName, 'system-node-critical');
    assert.deepEqual(pod.tolerations, [{ operator: 'Exists' }]);
    assert.deepEqual(container.securityContext!.capabilities, {
      drop: ['ALL'],
      add: ['NET_ADMIN', 'NET_RAW'],
    });
    assert.equal(container.securityContext!.privileged, false);
    assert.ok(argsOf(container).includes('--mode=iptables'));
    assert.ok(argsOf(container).includes('--hostname-override=$(NODE_NAME)'));
    const nodeName = container.env!.find((variable) => variable.name === 'NODE_NAME');
    assert.equal(nodeName?.valueFrom?.fieldRef?.fieldPath, 'spec.nodeName');
    const mounts = new Map(container.volumeMounts!.map((mount) => [mount.mountPath, mount.name]));
    const volumes = new Map(pod.volumes!.map((volume) => [volume.name, volume.hostPath?.path]));
    assert.equal(volumes.get(mounts.get('/run/xtables.lock')!), '/run/xtables.lock');
    assert.equal(volumes.get(mounts.get('/lib/modules')!), '/lib/modules');
    const healthz = container.ports!.find((port) => port.name === 'healthz');
    assert.equal(healthz?.containerPort, 10256);
    assert.equal(container.livenessProbe!.httpGet!.port, 'healthz');
    assert.equal(container.readinessProbe!.httpGet!.port, 'healthz');
    assert.ok(argsOf(container).includes('--metrics-bind-address=127.0.0.1:10249'));
  });

  test('takes --mode and the node-port addresses from values (nftables)', async () => {
    const container = firstContainer(find<IDaemonSet>(await render('nftables-values.yaml'), 'DaemonSet'));
    const args = argsOf(container);
    assert.ok(args.includes('--mode=nftables'), args.join(' '));
    assert.ok(args.includes('--cluster-cidr=10.244.0.0/16'), args.join(' '));
    assert.ok(args.includes('--nodeport-addresses=198.18.0.0/15'), args.join(' '));
  });

  test('takes --mode and the sync periods from values (ipvs)', async () => {
    const args = argsOf(firstContainer(find<IDaemonSet>(await render('ipvs-values.yaml'), 'DaemonSet')));
    assert.ok(args.includes('--mode=ipvs'), args.join(' '));
    assert.ok(args.includes('--min-sync-period=500ms'), args.join(' '));
    assert.ok(args.includes('--sync-period=1m'), args.join(' '));
    assert.ok(args.includes('--ipvs-scheduler=lc'), args.join(' '));
  });

  test('passes --ipvs-scheduler only in ipvs mode', async () => {
    const args = argsOf(firstContainer(find<IDaemonSet>(await render(undefined), 'DaemonSet')));
    assert.ok(!args.some((arg) => arg.startsWith('--ipvs-scheduler')), args.join(' '));
  });

  test('announces LoadBalancer IPs (L2) unless turned off, on the interface values name', async () => {
    const envOf = async (extraArgs: readonly string[]) =>
      Object.fromEntries(
        (firstContainer(find<IDaemonSet>(await render(undefined, extraArgs), 'DaemonSet')).env ?? []).map(
          (variable) => [variable.name, variable.value],
        ),
      );
    const byDefault = await envOf([]);
    assert.equal(byDefault['PORTICO_L2_ANNOUNCE'], 'true');
    assert.equal('PORTICO_L2_INTERFACE' in byDefault, false);
    const onEth1 = await envOf(['--set', 'agent.l2Announcement.interface=eth1']);
    assert.equal(onEth1['PORTICO_L2_INTERFACE'], 'eth1');
    const off = await envOf(['--set', 'agent.l2Announcement.enabled=false']);
    assert.equal('PORTICO_L2_ANNOUNCE' in off, false);
  });
});

describe('charts/portico: RBAC', () => {
  test('no Role or ClusterRole grants a wildcard, whatever the values', async () => {
    for (const valuesFile of ciValuesFiles) {
      const manifests = await render(valuesFile);
      const roles = manifests.filter((m) => m.kind === 'Role' || m.kind === 'ClusterRole');
      for (const role of roles.map((m) => find<IRole | IClusterRole>(manifests, m.kind, m.metadata.name))) {
        for (const rule of role.rules ?? []) {
          for (const field of ['apiGroups', 'resources', 'verbs', 'resourceNames'] as const) {
            assert.ok(
              !(rule[field] ?? []).includes('*'),
              `${role.kind} ${role.metadata!.name} has "*" in ${field}`,
            );
          }
          assert.equal(
            rule.nonResourceURLs,
            undefined,
            `${role.kind} ${role.metadata!.name} grants nonResourceURLs`,
          );
        }
      }
    }
  });

  /** `group/resource` → sorted verbs, so comparisons ignore how rules are grouped. */
  function grants(role: IRole | IClusterRole): Record<string, string[]> {
    const table: Record<string, string[]> = {};
    for (const rule of role.rules ?? []) {
      for (const group of rule.apiGroups ?? []) {
        for (const resource of rule.resources ?? []) {
          const key = group ? `${group}/${resource}` : resource;
          table[key] = [...new Set([...(table[key] ?? []), ...rule.verbs])].sort();
        }
      }
    }
    return table;
  }

  test('the controller-manager ClusterRole grants exactly the verbs its controllers use', async () => {
    const role = find<IClusterRole>(await render(), 'ClusterRole', `${RELEASE}-controller-manager`);
    const read = ['get', 'list', 'watch'];
    assert.deepEqual(grants(role), {
      services: [...read, 'patch', 'update'].sort(),
      'services/status': ['patch', 'update'],
      pods: read,
      nodes: read,
      namespaces: read,
      endpoints: [...read, 'create', 'delete', 'update'].sort(),
      'discovery.k8s.io/endpointslices': [...read, 'create', 'delete', 'update'].sort(),
      events: ['create', 'get', 'update'],
      'portico.dev/loadbalancerippools': read,
      'portico.dev/loadbalancerippools/status': ['patch', 'update'],
    });
  });

  test('ConfigMaps and Leases are granted only through Roles in the release namespace', async () => {
    const manifests = await render();
    for (const { metadata } of manifests.filter((m) => m.kind === 'ClusterRole')) {
      const clusterRole = find<IClusterRole>(manifests, 'ClusterRole', metadata.name);
      const granted = Object.keys(grants(clusterRole));
      assert.ok(!granted.includes('configmaps'), `${metadata.name} grants configmaps cluster-wide`);
      assert.ok(
        !granted.includes('coordination.k8s.io/leases'),
        `${metadata.name} grants leases cluster-wide`,
      );
    }
    const controllerRole = find<IRole>(manifests, 'Role', `${RELEASE}-controller-manager`);
    assert.equal(controllerRole.metadata!.namespace, NAMESPACE);
    assert.deepEqual(grants(controllerRole), {
      configmaps: ['create', 'get', 'list', 'update', 'watch'],
      'coordination.k8s.io/leases': ['create', 'get', 'update'],
    });
    const agentRole = find<IRole>(manifests, 'Role', `${RELEASE}-agent`);
    assert.deepEqual(grants(agentRole), {
      'coordination.k8s.io/leases': ['create', 'get', 'list', 'update', 'watch'],
    });
  });

  test('the agent reads services, endpointslices and nodes and writes only events', async () => {
    const manifests = await render();
    assert.deepEqual(grants(find<IClusterRole>(manifests, 'ClusterRole', `${RELEASE}-agent`)), {
      services: ['get', 'list', 'watch'],
      nodes: ['get', 'list', 'watch'],
      'discovery.k8s.io/endpointslices': ['get', 'list', 'watch'],
      events: ['create', 'get', 'update'],
    });
  });

  test('every binding names a role and a service account the chart renders', async () => {
    const manifests = await render();
    const bindings = manifests.filter((m) => m.kind === 'RoleBinding' || m.kind === 'ClusterRoleBinding');
    assert.equal(bindings.length, 4);
    for (const { kind, metadata } of bindings) {
      const binding = find<IRoleBinding | IClusterRoleBinding>(manifests, kind, metadata.name);
      const roleKind = kind === 'RoleBinding' ? 'Role' : 'ClusterRole';
      assert.equal(binding.roleRef.kind, roleKind);
      find(manifests, roleKind, binding.roleRef.name);
      for (const subject of binding.subjects ?? []) {
        assert.equal(subject.namespace, NAMESPACE);
        find(manifests, 'ServiceAccount', subject.name);
      }
    }
  });
});

describe('charts/portico: admission webhooks', () => {
  test('mutate Service CREATE/UPDATE and validate Services, Endpoints, EndpointSlices and pools', async () => {
    const manifests = await render();
    const mutating = find<IMutatingWebhookConfiguration>(manifests, 'MutatingWebhookConfiguration');
    assert.equal(mutating.webhooks?.length, 1);
    assert.deepEqual(mutating.webhooks![0]!.rules, [
      {
        apiGroups: [''],
        apiVersions: ['v1'],
        resources: ['services'],
        operations: ['CREATE', 'UPDATE'],
        scope: 'Namespaced',
      },
    ]);
    const validating = find<IValidatingWebhookConfiguration>(manifests, 'ValidatingWebhookConfiguration');
    const validated = validating.webhooks!.flatMap((webhook) =>
      (webhook.rules ?? []).flatMap((rule) =>
        (rule.resources ?? []).map((resource) => `${rule.apiGroups![0]}/${resource}`),
      ),
    );
    assert.deepEqual(validated.sort(), [
      '/endpoints',
      '/services',
      'discovery.k8s.io/endpointslices',
      'portico.dev/loadbalancerippools',
    ]);
    const webhookService = find<IService>(manifests, 'Service', `${RELEASE}-webhook`);
    for (const webhook of [...mutating.webhooks!, ...validating.webhooks!]) {
      assert.equal(
        webhook.sideEffects,
        webhook === mutating.webhooks![0] ? 'NoneOnDryRun' : 'None',
        webhook.name,
      );
      assert.deepEqual(webhook.admissionReviewVersions, ['v1']);
      assert.equal(webhook.clientConfig.service?.name, webhookService.metadata!.name);
      assert.equal(webhook.clientConfig.service?.namespace, NAMESPACE);
      assert.deepEqual(webhook.namespaceSelector?.matchExpressions, [
        { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [NAMESPACE] },
      ]);
      const expected = webhook.name === 'loadbalancerippools.portico.dev' ? 'Fail' : 'Ignore';
      assert.equal(webhook.failurePolicy, expected, webhook.name);
    }
    const deployment = find<IDeployment>(manifests, 'Deployment');
    assert.deepEqual(webhookService.spec!.selector, deployment.spec!.selector.matchLabels);
  });

  test('each webhook calls the path the controller-manager serves it on', async () => {
    const manifests = await render();
    const paths = Object.fromEntries(
      [
        ...find<IMutatingWebhookConfiguration>(manifests, 'MutatingWebhookConfiguration').webhooks!,
        ...find<IValidatingWebhookConfiguration>(manifests, 'ValidatingWebhookConfiguration').webhooks!,
      ].map((webhook) => [webhook.name, webhook.clientConfig.service?.path]),
    );
    assert.deepEqual(paths, {
      'allocate.services.portico.dev': MUTATE_SERVICES_PATH,
      'services.portico.dev': VALIDATE_SERVICES_PATH,
      'endpoints.portico.dev': VALIDATE_ENDPOINTS_PATH,
      'endpointslices.portico.dev': VALIDATE_ENDPOINTSLICES_PATH,
      'loadbalancerippools.portico.dev': VALIDATE_LOADBALANCERIPPOOLS_PATH,
    });
  });

  test('the chart routes the same resources to the same webhooks as the local cluster does', async () => {
    const manifests = await render();
    const chart = find<IValidatingWebhookConfiguration>(manifests, 'ValidatingWebhookConfiguration');
    const local = webhookConfigurations('portico', { url: 'https://127.0.0.1:9443' }, 'ca').validating;
    const routing = (webhooks: readonly { name: string; rules?: unknown[] }[]) =>
      Object.fromEntries(webhooks.map((webhook) => [webhook.name, webhook.rules]));
    assert.deepEqual(routing(chart.webhooks ?? []), routing(local.webhooks ?? []));
  });

  test('the caBundle is the CA that signed a serving certificate valid for the webhook Service', async () => {
    const manifests = await render();
    const secret = find<ISecret>(manifests, 'Secret', `${RELEASE}-webhook-tls`);
    assert.equal(secret.type, 'kubernetes.io/tls');
    const data = secret.data!;
    const decode = (key: string) => Buffer.from(data[key]!, 'base64');
    const ca = new X509Certificate(decode('ca.crt'));
    const serving = new X509Certificate(decode('tls.crt'));
    assert.ok(ca.ca, 'ca.crt is not a CA certificate');
    assert.ok(serving.verify(ca.publicKey), 'tls.crt is not signed by ca.crt');
    assert.ok(serving.checkPrivateKey(createPrivateKey(decode('tls.key'))), 'tls.key does not match tls.crt');
    assert.equal(
      serving.checkHost(`${RELEASE}-webhook.${NAMESPACE}.svc`),
      `${RELEASE}-webhook.${NAMESPACE}.svc`,
    );
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      const configuration = find<IMutatingWebhookConfiguration | IValidatingWebhookConfiguration>(
        manifests,
        kind,
      );
      for (const webhook of configuration.webhooks!) {
        assert.equal(webhook.clientConfig.caBundle, data['ca.crt'], `${kind} ${webhook.name}`);
      }
    }
    const volume = find<IDeployment>(manifests, 'Deployment').spec!.template.spec!.volumes!.find(
      (v) => v.name === 'webhook-tls',
    );
    assert.equal(volume?.secret?.secretName, secret.metadata!.name);
  });

  test('with cert-manager, a Certificate feeds the Secret and cainjector fills the caBundle', async () => {
    const manifests = await render('cert-manager-values.yaml');
    assert.equal(manifests.filter((m) => m.kind === 'Secret').length, 0);
    const certificate = find<Certificate>(manifests, 'Certificate');
    const issuer = find<Manifest>(manifests, 'Issuer');
    assert.equal(certificate.spec.secretName, `${RELEASE}-webhook-tls`);
    assert.deepEqual(certificate.spec.issuerRef, {
      name: issuer.metadata.name,
      kind: 'Issuer',
      group: 'cert-manager.io',
    });
    assert.ok(certificate.spec.dnsNames.includes(`${RELEASE}-webhook.${NAMESPACE}.svc`));
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      const configuration = find<IMutatingWebhookConfiguration | IValidatingWebhookConfiguration>(
        manifests,
        kind,
      );
      assert.equal(
        configuration.metadata!.annotations?.['cert-manager.io/inject-ca-from'],
        `${NAMESPACE}/${certificate.metadata.name}`,
      );
      for (const webhook of configuration.webhooks!) {
        assert.equal(webhook.clientConfig.caBundle, undefined);
      }
    }
  });

  test('with a cert-manager issuerRef, no Issuer is created and the failurePolicy follows values', async () => {
    const manifests = await render('cert-manager-issuer-values.yaml');
    assert.equal(manifests.filter((m) => m.kind === 'Issuer').length, 0);
    assert.deepEqual(find<Certificate>(manifests, 'Certificate').spec.issuerRef, {
      name: 'cluster-ca',
      kind: 'ClusterIssuer',
      group: 'cert-manager.io',
    });
    const mutating = find<IMutatingWebhookConfiguration>(manifests, 'MutatingWebhookConfiguration');
    assert.equal(mutating.webhooks![0]!.failurePolicy, 'Fail');
  });
});

describe('charts/portico: monitoring', () => {
  test('ServiceMonitors select the metrics Services of both components, by a port they expose', async () => {
    const manifests = await render('monitoring-values.yaml');
    const monitors = manifests.filter((m) => m.kind === 'ServiceMonitor');
    assert.equal(monitors.length, 2);
    const services = manifests
      .filter((m) => m.kind === 'Service')
      .map((m) => find<IService>(manifests, 'Service', m.metadata.name));
    for (const { metadata } of monitors) {
      const monitor = find<ServiceMonitor>(manifests, 'ServiceMonitor', metadata.name);
      assert.equal(monitor.metadata.labels?.['release'], 'prometheus');
      const selected = services.filter(
        (service) =>
          Object.entries(monitor.spec.selector.matchLabels).every(
            ([k, v]) => service.metadata!.labels?.[k] === v,
          ) && service.spec!.ports!.some((port) => port.name === monitor.spec.endpoints[0]!.port),
      );
      assert.ok(selected.length >= 1, `${monitor.metadata.name} selects no Service with a metrics port`);
    }
    const agentArgs = argsOf(firstContainer(find<IDaemonSet>(manifests, 'DaemonSet')));
    assert.ok(
      agentArgs.includes('--metrics-bind-address=0.0.0.0:10249'),
      'scraped agents must listen beyond loopback',
    );
  });

  test('the Grafana dashboard ConfigMap carries the dashboard JSON with the four metric families', async () => {
    const manifests = await render('monitoring-values.yaml');
    const configMap = find<IConfigMap>(manifests, 'ConfigMap', `${RELEASE}-dashboard`);
    assert.equal(configMap.metadata!.labels?.['grafana_dashboard'], '1');
    const dashboard = JSON.parse(configMap.data!['portico.json']!) as GrafanaDashboard;
    const onDisk: unknown = JSON.parse(await readFile(join(CHART, 'dashboards', 'portico.json'), 'utf8'));
    assert.deepEqual(dashboard, onDisk);
    const expressions = dashboard.panels
      .flatMap((panel) => panel.targets.map((target) => target.expr))
      .join('\n');
    for (const metric of [
      'portico_sync_proxy_rules_duration_seconds',
      'portico_network_programming_duration_seconds',
      'portico_allocator_allocated',
      'portico_loadbalancer_pool_allocated',
    ]) {
      assert.ok(expressions.includes(metric), `no panel queries ${metric}`);
    }
  });

  test('nothing about monitoring is rendered by default', async () => {
    const manifests = await render();
    assert.equal(manifests.filter((m) => m.kind === 'ServiceMonitor' || m.kind === 'ConfigMap').length, 0);
  });
});

describe('charts/portico: values are checked before anything is installed', () => {
  const rejected: { name: string; set: string[]; message: RegExp }[] = [
    {
      name: 'an unknown proxy mode',
      set: ['agent.mode=ebpf'],
      message: /at '\/agent\/mode': value must be one of 'iptables', 'nftables', 'ipvs'/,
    },
    {
      name: 'a misspelt key',
      set: ['agent.modes=nftables'],
      message: /at '\/agent': additional properties 'modes' not allowed/,
    },
    {
      name: 'a ClusterIP range that is not a CIDR',
      set: ['serviceClusterIPRange=10.96.0.0'],
      message: /at '\/serviceClusterIPRange': '10\.96\.0\.0' does not match pattern/,
    },
    {
      name: 'a NodePort range that is not FIRST-LAST',
      set: ['serviceNodePortRange=30000:32767'],
      message: /at '\/serviceNodePortRange': '30000:32767' does not match pattern/,
    },
    {
      name: 'a NodePort range with FIRST > LAST',
      set: ['serviceNodePortRange=32767-30000'],
      message:
        /serviceNodePortRange: Invalid value: "32767-30000": must be FIRST-LAST with 1 <= FIRST <= LAST <= 65535/,
    },
    {
      name: 'a failurePolicy the API server does not know',
      set: ['webhook.failurePolicy=Retry'],
      message: /at '\/webhook\/failurePolicy': value must be one of 'Ignore', 'Fail'/,
    },
    {
      name: 'zero replicas',
      set: ['controllerManager.replicas=0'],
      message: /at '\/controllerManager\/replicas': minimum: got 0, want 1/,
    },
    {
      name: 'two replicas without leader election',
      set: ['controllerManager.leaderElection.enabled=false'],
      message:
        /controllerManager\.leaderElection\.enabled: Invalid value: false: must be true when controllerManager\.replicas is 2/,
    },
    {
      name: 'a duration in an unknown unit',
      set: ['agent.syncPeriod=30sec'],
      message: /at '\/agent\/syncPeriod': '30sec' does not match pattern/,
    },
    {
      name: 'a pull policy Kubernetes does not know',
      set: ['image.agent.pullPolicy=Sometimes'],
      message: /at '\/image\/agent\/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'/,
    },
  ];
  for (const { name, set, message } of rejected) {
    test(`helm template rejects ${name}`, async () => {
      const result = await runHelm([
        'template',
        RELEASE,
        CHART,
        '--namespace',
        NAMESPACE,
        ...set.flatMap((s) => ['--set', s]),
      ]);
      assert.notEqual(result.code, 0, 'helm template succeeded');
      assert.match(result.stderr, message);
    });
  }
});

describe('charts/portico: LoadBalancerIPPool CRD', () => {
  test('crds/ holds exactly api/loadbalancerippool.ts LOAD_BALANCER_IP_POOL_CRD', async () => {
    const onDisk = parse(await readFile(join(CHART, 'crds', 'loadbalancerippools.portico.dev.yaml'), 'utf8'));
    assert.deepEqual(onDisk, JSON.parse(JSON.stringify(LOAD_BALANCER_IP_POOL_CRD)));
  });

  test('is a valid cluster-scoped CustomResourceDefinition with a status subresource and printer columns', async () => {
    const crd = find<ICustomResourceDefinition>(await render(), 'CustomResourceDefinition');
    assert.equal(crd.spec.scope, 'Cluster');
    const version = crd.spec.versions[0]!;
    assert.deepEqual(version.subresources, { status: {} });
    const columns = (version.additionalPrinterColumns ?? []).map((column) => column.name);
    for (const column of ['Addresses', 'Auto Assign', 'Priority', 'Allocated', 'Capacity', 'Age']) {
      assert.ok(columns.includes(column), `no ${column} column`);
    }
    const spec = version.schema!.openAPIV3Schema!.properties!['spec']!.properties!;
    assert.deepEqual(Object.keys(spec).sort(), [
      'addresses',
      'autoAssign',
      'avoidBuggyIPs',
      'namespaceSelector',
      'priority',
      'serviceSelector',
    ]);
  });
});
