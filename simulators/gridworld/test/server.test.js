'use strict';
// The server end to end: a real process on a free port, a grpc-js client, SIGTERM.

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');
const readline = require('node:readline');
const { test } = require('node:test');

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { service: HealthService } = require('grpc-health-check');

const { encode } = require('../tensors');

const SERVER = path.resolve(__dirname, '../server.js');
const definition = protoLoader.loadSync('flare/simulator/v1/simulator.proto', {
  keepCase: true,
  longs: String,
  enums: Number,
  defaults: true,
  oneofs: true,
  includeDirs: [path.resolve(__dirname, '../../../protos')],
});
const Simulator = grpc.makeGenericClientConstructor(definition['flare.simulator.v1.Simulator']);
const Health = grpc.makeGenericClientConstructor(HealthService);

/** Start the server; resolves with the process and the address it printed. */
function start(args = []) {
  const child = spawn(process.execPath, [SERVER, '--address', '127.0.0.1:0', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = readline.createInterface({ input: child.stdout });
  const output = [];
  lines.on('line', (line) => output.push(line));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    lines.once('line', (line) => {
      const match = /^gridworld simulator listening on (\S+:\d+)$/.exec(line);
      if (match) resolve({ child, address: match[1], output });
      else reject(new Error(`unexpected first line: ${line}`));
    });
  });
}

const call = (client, method, request) =>
  new Promise((resolve, reject) => client[method](request, (err, response) => (err ? reject(err) : resolve(response))));

test('serves the contract, health, and stops cleanly on SIGTERM', async () => {
  const { child, address, output } = await start(['--max-sessions', '2']);
  const client = new Simulator(address, grpc.credentials.createInsecure());
  const health = new Health(address, grpc.credentials.createInsecure());
  try {
    for (const service of ['', 'flare.simulator.v1.Simulator']) {
      assert.equal((await call(health, 'check', { service })).status, 'SERVING');
    }
    const opened = await call(client, 'OpenSession', { protocol_version: 1, config: { level: '2' }, seed: 5 });
    assert.deepEqual(opened.spec.observations[0].shape, ['3', '7', '7']);
    assert.equal(opened.spec.max_episode_steps, '28');
    assert.equal(opened.spec.actions[0].kind, 'discrete');
    const reset = await call(client, 'Reset', { session_id: opened.session_id });
    assert.equal(reset.observations.image.data.length, 3 * 7 * 7);
    const step = await call(client, 'Step', {
      session_id: opened.session_id,
      actions: { action: encode('int64', [1], BigInt64Array.of(1n)) },
    });
    assert.equal(step.rewards.reward.data.length, 4);
    await assert.rejects(
      call(client, 'Step', { session_id: opened.session_id, actions: { action: encode('int64', [2], BigInt64Array.of(1n, 1n)) } }),
      (err) => err.code === grpc.status.INVALID_ARGUMENT && /shape \[2\], the spec says \[1\]/.test(err.details),
    );
    await assert.rejects(call(client, 'Reset', { session_id: 'nope' }), (err) => err.code === grpc.status.NOT_FOUND);
    await call(client, 'OpenSession', { protocol_version: 1 });
    await assert.rejects(
      call(client, 'OpenSession', { protocol_version: 1 }),
      (err) => err.code === grpc.status.RESOURCE_EXHAUSTED,
    );
  } finally {
    client.close();
    health.close();
  }
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  child.kill('SIGTERM');
  assert.deepEqual(await exited, { code: 0, signal: null });
  assert.equal(output.at(-1), 'gridworld simulator stopped');
});

test('the Session stream answers in order and ends with a status on a bad request', async () => {
  const { child, address } = await start();
  const client = new Simulator(address, grpc.credentials.createInsecure());
  try {
    const stream = client.Session();
    const answers = [];
    const ended = new Promise((resolve) => {
      stream.on('data', (response) => answers.push(response.response));
      stream.on('error', resolve);
    });
    stream.write({ open: { protocol_version: 1, config: { level: '1' } } });
    stream.write({ reset: {} });
    stream.write({ step: { actions: { action: encode('int64', [1], BigInt64Array.of(9n)) } } });
    const err = await ended;
    assert.deepEqual(answers, ['open', 'reset']);
    assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
    assert.match(err.details, /value 9 is outside 0\.\.3/);
  } finally {
    client.close();
    child.kill('SIGTERM');
  }
});
