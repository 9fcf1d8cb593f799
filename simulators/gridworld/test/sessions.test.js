'use strict';
// Sessions and their errors: the statuses and messages a client gets, without a network.

const assert = require('node:assert/strict');
const { test } = require('node:test');

const { status } = require('@grpc/grpc-js');
const { Registry } = require('../sessions');
const { decode, encode } = require('../tensors');

const open = (registry, extra = {}) => registry.open({ protocol_version: 1, config: {}, ...extra });
const action = (...values) => ({ action: encode('int64', [values.length], BigInt64Array.from(values.map(BigInt))) });
const batch = (...values) => ({
  action: encode('int64', [values.length, 1], BigInt64Array.from(values.map(BigInt))),
});

function rejects(work, code, fragment) {
  assert.throws(work, (err) => {
    assert.equal(err.code, code, err.message);
    assert.ok(err.message.includes(fragment), `${err.message} lacks ${fragment}`);
    return true;
  });
}

test('opening: protocol version, config, the session limit', () => {
  const registry = new Registry({ maxSessions: 2 });
  rejects(() => registry.open({ protocol_version: 0, config: {} }), status.FAILED_PRECONDITION, 'speaks 1');
  rejects(() => open(registry, { config: { level: '4' } }), status.INVALID_ARGUMENT, "'level': '4'");
  rejects(() => open(registry, { config: { size: '3' } }), status.INVALID_ARGUMENT, "config key 'size'");
  open(registry);
  open(registry, { config: { level: '3' } });
  rejects(() => open(registry), status.RESOURCE_EXHAUSTED, 'maximum of 2 sessions');
  assert.equal(registry.size, 2);
});

test('a seed of 0 is a seed; no seed is random', () => {
  const registry = new Registry();
  const first = (extra) => open(registry, { config: { level: '3' }, ...extra }).reset().observations.image.data.toString('hex');
  assert.equal(first({ seed: '0' }), first({ seed: '0' }));
  assert.notEqual(first({}), first({}));
});

test('step before reset, after the end, and bad actions', () => {
  const registry = new Registry();
  const session = open(registry, { seed: '1' });
  rejects(() => session.step({ actions: action(1) }), status.FAILED_PRECONDITION, 'step before reset');
  session.reset();
  rejects(() => session.step({ actions: {} }), status.INVALID_ARGUMENT, "missing action 'action'");
  rejects(() => session.step({ actions: { jump: action(1).action } }), status.INVALID_ARGUMENT, "unknown action 'jump'");
  rejects(() => session.step({ actions: action(1, 2) }), status.INVALID_ARGUMENT, "actions['action']: shape [2], the spec says [1]");
  rejects(() => session.step({ actions: action(4) }), status.INVALID_ARGUMENT, 'value 4 is outside 0..3');
  rejects(
    () => session.step({ actions: { action: encode('int32', [1], Int32Array.of(1)) } }),
    status.INVALID_ARGUMENT,
    'dtype DTYPE_INT32, the spec says DTYPE_INT64',
  );
  rejects(() => session.step({ actions: action(1), actrep: -1 }), status.INVALID_ARGUMENT, 'actrep');
  const result = session.step({ actions: action(0), actrep: 100 }); // runs to the episode's end
  assert.ok(result.game_over !== 0 || result.time_out);
  rejects(() => session.step({ actions: action(0) }), status.FAILED_PRECONDITION, 'call Reset first');
  session.reset();
  session.step({ actions: action(0) });
});

test('StepMany: checks every row before stepping any', () => {
  const registry = new Registry();
  const [a, b] = [open(registry, { seed: '1' }), open(registry, { seed: '2' })];
  const other = open(registry, { config: { level: '2' } });
  a.reset();
  const stepMany = (ids, actions, extra = {}) => registry.stepMany({ session_ids: ids, actions, ...extra });
  rejects(() => stepMany([], batch()), status.INVALID_ARGUMENT, 'session_ids is empty');
  rejects(() => stepMany([a.id, a.id], batch(1, 1)), status.INVALID_ARGUMENT, 'once per call');
  rejects(() => stepMany([a.id, 'nope'], batch(1, 1)), status.NOT_FOUND, "no session 'nope'");
  rejects(() => stepMany([a.id, other.id], batch(1, 1)), status.INVALID_ARGUMENT, 'session_ids[1] has another spec');
  rejects(() => stepMany([a.id, b.id], batch(1)), status.INVALID_ARGUMENT, 'shape [1, 1], the spec says [2, 1]');
  rejects(() => stepMany([a.id, b.id], batch(1, 1)), status.FAILED_PRECONDITION, 'session_ids[1]: session');
  assert.equal(a.game.steps, 0, 'a bad request steps no session');
});

test('StepMany with auto_reset returns final observations of the ended rows', () => {
  const registry = new Registry();
  const sessions = [1, 2, 3].map((seed) => open(registry, { seed: String(seed) }));
  sessions.forEach((s) => s.reset());
  const ids = sessions.map((s) => s.id);
  let response;
  for (let t = 0; t < 20; t++) {
    response = registry.stepMany({ session_ids: ids, actions: batch(0, 0, 0), auto_reset: true });
    if (response.reset_rows.length) break;
  }
  assert.ok(response.reset_rows.length > 0);
  assert.deepEqual(response.reset_rows, [...response.reset_rows].sort());
  assert.deepEqual(response.observations.image.shape, [3, 3, 5, 5]);
  assert.deepEqual(response.rewards.reward.shape, [3, 1]);
  assert.deepEqual(decode(response.final_observations.image).shape, [response.reset_rows.length, 3, 5, 5]);
  const ended = decode(response.time_out).values.map((v, i) => v || decode(response.game_over).values[i] !== 0);
  assert.deepEqual(
    response.reset_rows,
    [...ended].flatMap((end, i) => (end ? [i] : [])),
  );
  for (const row of response.reset_rows) assert.ok(sessions[row].game.running, 'reset in the same call');
});

test('idle sessions are reaped; a reaped session is NOT_FOUND', () => {
  const registry = new Registry({ idleTimeoutS: 1 });
  const session = open(registry);
  assert.deepEqual(registry.reapIdle(Date.now() + 500), []);
  assert.deepEqual(registry.reapIdle(Date.now() + 1500), [session.id]);
  rejects(() => registry.get(session.id), status.NOT_FOUND, 'no session');
  rejects(() => session.reset(), status.NOT_FOUND, 'idle past the timeout');
  const never = new Registry({ idleTimeoutS: 0 });
  open(never);
  assert.deepEqual(never.reapIdle(Date.now() + 1e9), []);
});
