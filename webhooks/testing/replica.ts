/**
 * One webhook replica as its own process, for tests that kill replicas: the allocators over the
 * API server's ConfigMaps, a Services cache and the webhook server, as every controller-manager
 * replica runs them. Prints `ready <port>` once serving.
 *
 * Usage: node webhooks/testing/replica.ts <kubeconfig> <namespace> <cert-file> <key-file> [cluster-ip-range]
 */
import { kubeJsonClient, loadKubeConfig } from '../../controllers/runtime/kube.ts';
import { createLogger } from '../../controllers/runtime/logging.ts';
import { indexedServicesInformer, loopbackWebhookServer, testServiceAllocators } from './services.ts';

const [kubeconfigPath, namespace, certFile, keyFile, range] = process.argv.slice(2);
if (!kubeconfigPath || !namespace || !certFile || !keyFile) {
  process.stderr.write(
    'usage: replica.ts <kubeconfig> <namespace> <cert-file> <key-file> [cluster-ip-range]\n',
  );
  process.exit(2);
}
const logger = createLogger({ level: process.env['PORTICO_TEST_LOG_LEVEL'] ?? 'silent' });
const { kubeConfig } = loadKubeConfig({ kubeconfigPath });
const allocators = testServiceAllocators(kubeJsonClient(kubeConfig), namespace, range);
await allocators.verifyStoredState();
const services = indexedServicesInformer(kubeConfig, logger);
services.start();
const server = loopbackWebhookServer({ allocators, services, certFile, keyFile, logger });
await server.start();
process.stdout.write(`ready ${server.address().port}\n`);
// The benchmark reads how many compare-and-swap writes this replica made.
process.on('SIGTERM', () => {
  const stats = allocators.all().map(({ label, handle }) => ({ allocator: label, ...handle.store.stats }));
  process.stdout.write(`stats ${JSON.stringify(stats)}\n`, () => {
    void server.stop().then(() => process.exit(0));
  });
});
