'use strict';
// The server end to end: a real process on a free port, a grpc-js client, SIGTERM.

const assert = require('node:assert/strict');
const { test } = require('node:test');

const grpc = require('@grpc/grpc-js');
const { service: HealthService } = require('grpc-health-check');

const { encode } = require('../tensors');
const { Simulator, start, call } = require('./support');

const Health = grpc.makeGenericClientConstructor(HealthService);

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

test('the command line: quota and keepalive flags, their defaults and bad values', () => {
  const { parseArguments, keepalive } = require('../server');
  const defaults = parseArguments([]);
  assert.equal(defaults.maxSessionsPerClient, 0);
  assert.equal(defaults.keepaliveMs, 60000);
  assert.equal(defaults.keepaliveTimeoutMs, 20000);
  assert.deepEqual(keepalive(defaults), {
    'grpc.keepalive_time_ms': 60000,
    'grpc.keepalive_timeout_ms': 20000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 10000,
  });
  const set = parseArguments(['--max-sessions-per-client', '3', '--keepalive-s', '0.5', '--keepalive-timeout-s', '2']);
  assert.deepEqual([set.maxSessionsPerClient, set.keepaliveMs, set.keepaliveTimeoutMs], [3, 500, 2000]);
  for (const bad of [
    ['--max-sessions-per-client', '1.5'],
    ['--max-sessions-per-client=-1'],
    ['--keepalive-s', '0'],
    ['--keepalive-s', 'soon'],
    ['--keepalive-timeout-s', '0'],
    ['--keepalive-timeout-s', '1e9'], // past what a Node timer holds
  ]) {
    assert.throws(() => parseArguments(bad), /^Error: --(max-sessions-per-client|keepalive)/, bad.join(' '));
  }
});

test('a peer is counted by its host: the port goes, IPv6 and IPv4-mapped addresses too', () => {
  const { peerHost } = require('../server');
  assert.equal(peerHost('127.0.0.1:54321'), '127.0.0.1');
  assert.equal(peerHost('::1:54321'), '::1');
  assert.equal(peerHost('[::1]:54321'), '::1');
  assert.equal(peerHost('::ffff:10.1.2.3:443'), '10.1.2.3');
  assert.equal(peerHost('unknown'), 'unknown');
});
