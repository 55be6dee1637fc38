/**
 * One webhook replica as its own process, for tests that kill replicas: the allocators over the
 * API server's ConfigMaps, a Services cache and the webhook server, as every controller-manager
 * replica runs them. Prints `ready <port>` once serving.
 *
 * Usage: node webhooks/testing/replica.ts <kubeconfig> <namespace> <cert-file> <key-file> [cluster-ip-range]
 */
import type { V1Service } from '@kubernetes/client-node';
import { parseServiceClusterIPRanges } from '../../allocators/cluster-ip-range.ts';
import { KubeConfigMapClient } from '../../allocators/configmap-client.ts';
import { NodePortRange } from '../../allocators/node-port-range.ts';
import { Informer } from '../../controllers/runtime/informer.ts';
import { kubeJsonClient, loadKubeConfig } from '../../controllers/runtime/kube.ts';
import { createLogger } from '../../controllers/runtime/logging.ts';
import { clusterIPLookup } from '../endpoints/validate.ts';
import { webhookRoutes } from '../routes.ts';
import { WebhookServer } from '../server.ts';
import { ServiceAllocators } from '../services/allocators.ts';
import { serviceIndexers } from '../services/held.ts';

const [kubeconfigPath, namespace, certFile, keyFile, range] = process.argv.slice(2);
if (!kubeconfigPath || !namespace || !certFile || !keyFile) {
  process.stderr.write(
    'usage: replica.ts <kubeconfig> <namespace> <cert-file> <key-file> [cluster-ip-range]\n',
  );
  process.exit(2);
}
const logger = createLogger({ level: process.env['PORTICO_TEST_LOG_LEVEL'] ?? 'silent' });
const { kubeConfig } = loadKubeConfig({ kubeconfigPath });
const allocators = new ServiceAllocators({
  client: new KubeConfigMapClient(kubeJsonClient(kubeConfig)),
  namespace,
  ranges: {
    serviceCIDRs: parseServiceClusterIPRanges(range ?? '198.19.0.0/16'),
    nodePortRange: new NodePortRange(),
  },
});
await allocators.verifyStoredState();
const services = new Informer<V1Service>({
  kubeConfig,
  path: '/api/v1/services',
  indexers: serviceIndexers,
  logger,
});
services.start();
const server = new WebhookServer({
  address: { host: '127.0.0.1', port: 0 },
  certFile,
  keyFile,
  routes: webhookRoutes({
    allocators,
    isClusterIP: clusterIPLookup((index, value) => services.byIndex(index, value)),
  }),
  logger,
});
await server.start();
process.stdout.write(`ready ${server.address().port}\n`);
// The benchmark reads how many compare-and-swap writes this replica made.
process.on('SIGTERM', () => {
  const stats = allocators.all().map(({ label, handle }) => ({ allocator: label, ...handle.store.stats }));
  process.stdout.write(`stats ${JSON.stringify(stats)}\n`, () => {
    void server.stop().then(() => process.exit(0));
  });
});
