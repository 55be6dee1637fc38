import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import {
  CURL_STATUS_WRITE_OUT,
  parseCurlOutput,
  READINESS_FILE_PATH,
  scenarioKubectlArgs,
  webContainer,
} from './driver.ts';

function curl(url: string): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '-m', '2', '-w', CURL_STATUS_WRITE_OUT, url], (error, stdout) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout });
    });
  });
}

describe('parseCurlOutput', () => {
  test("splits a real curl's body and status, for 200 and 503 answers", async () => {
    const server = createServer((request, response) => {
      response.writeHead(request.url === '/down' ? 503 : 200);
      response.end(request.url === '/down' ? '{"localEndpoints":0}\n' : '<p>The host is web-1</p>\n');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      const up = await curl(`http://127.0.0.1:${port}/`);
      assert.deepEqual(parseCurlOutput(up.stdout, up.code), {
        curlExitCode: 0,
        httpStatus: 200,
        body: '<p>The host is web-1</p>\n',
      });
      const down = await curl(`http://127.0.0.1:${port}/down`);
      assert.deepEqual(parseCurlOutput(down.stdout, down.code), {
        curlExitCode: 0,
        httpStatus: 503,
        body: '{"localEndpoints":0}\n',
      });
    } finally {
      server.close();
    }
  });

  test('a refused connection has status 0 and curl exit 7', async () => {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    server.close();
    await once(server, 'close');
    const refused = await curl(`http://127.0.0.1:${port}/`);
    assert.deepEqual(parseCurlOutput(refused.stdout, refused.code), {
      curlExitCode: 7,
      httpStatus: 0,
      body: '',
    });
  });

  test('output without the status line is all body', () => {
    assert.deepEqual(parseCurlOutput('partial', 28), { curlExitCode: 28, httpStatus: 0, body: 'partial' });
  });
});

describe('webContainer', () => {
  test('probes the path served from the file setPodReadiness removes, and serves port 80 as http', () => {
    const container = webContainer('app') as {
      name: string;
      args: string[];
      ports: { name: string; containerPort: number }[];
      readinessProbe: { httpGet: { path: string; port: number } };
    };
    assert.equal(container.name, 'app');
    assert.deepEqual(container.ports, [{ name: 'http', containerPort: 80 }]);
    const directory = READINESS_FILE_PATH.slice(0, READINESS_FILE_PATH.lastIndexOf('/'));
    const file = READINESS_FILE_PATH.slice(directory.length);
    assert.equal(container.readinessProbe.httpGet.path, file);
    assert.equal(container.readinessProbe.httpGet.port, 80);
    assert.match(container.args[0] ?? '', new RegExp(`cd ${directory} .*touch ${file.slice(1)} `));
  });
});

describe('scenarioKubectlArgs', () => {
  test('every operation names its namespace; manifests come from stdin', () => {
    assert.deepEqual(scenarioKubectlArgs.apply('ns'), ['apply', '-n', 'ns', '-f', '-']);
    assert.deepEqual(scenarioKubectlArgs.delete('ns'), [
      'delete',
      '-n',
      'ns',
      '--ignore-not-found',
      '--wait',
      '-f',
      '-',
    ]);
    assert.deepEqual(scenarioKubectlArgs.wait('pod/client', 'condition=Ready', 60, 'ns'), [
      'wait',
      '-n',
      'ns',
      'pod/client',
      '--for=condition=Ready',
      '--timeout=60s',
    ]);
    assert.deepEqual(scenarioKubectlArgs.read('service/web', '{.spec.clusterIP}', 'ns'), [
      'get',
      '-n',
      'ns',
      'service/web',
      '-o',
      'jsonpath={.spec.clusterIP}',
    ]);
  });
});
