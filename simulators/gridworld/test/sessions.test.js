'use strict';
// Sessions and their errors: the statuses and messages a client gets, without a network.

const assert = require('node:assert/strict');
const { test } = require('node:test');

const { status } = require('@grpc/grpc-js');
const { Registry } = require('../sessions');
const { decode, encode } = require('../tensors');

const open = (registry, extra = {}, client = '') => registry.open({ protocol_version: 1, config: {}, ...extra }, client);
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

test('protocol_version 0 (UNSPECIFIED) and unknown versions are FAILED_PRECONDITION', () => {
  const registry = new Registry();
  for (const version of [0, 2, 99]) {
    const request = { protocol_version: version, config: {} };
    rejects(() => registry.open(request), status.FAILED_PRECONDITION, `protocol_version ${version}`);
  }
  assert.equal(registry.size, 0);
});

test('the per-client quota: counted by client, freed by close and by the reaper; 0 is none', () => {
  const registry = new Registry({ maxSessions: 10, maxSessionsPerClient: 2, idleTimeoutS: 1 });
  const mine = [open(registry, {}, '10.0.0.1'), open(registry, {}, '10.0.0.1')];
  rejects(() => open(registry, {}, '10.0.0.1'), status.RESOURCE_EXHAUSTED, "client '10.0.0.1' already has its quota of 2");
  open(registry, {}, '10.0.0.2'); // another client has its own quota
  registry.close(mine[0].id);
  open(registry, {}, '10.0.0.1');
  assert.equal(registry.sessionsOf('10.0.0.1'), 2);
  registry.reapIdle(Date.now() + 1500);
  assert.equal(registry.sessionsOf('10.0.0.1'), 0);
  assert.equal(registry.perClient.size, 0, 'no entry kept for a client without sessions');
  const unlimited = new Registry({ maxSessions: 5 });
  for (let i = 0; i < 5; i++) open(unlimited, {}, '10.0.0.1');
  rejects(() => open(unlimited, {}, '10.0.0.1'), status.RESOURCE_EXHAUSTED, 'maximum of 5 sessions');
});

test('config max_episode_steps: shortens the limit, the spec says so; bad values name the key', () => {
  const registry = new Registry();
  const short = open(registry, { config: { level: '2', max_episode_steps: '4' }, seed: '1' });
  assert.equal(short.spec.max_episode_steps, 4);
  assert.equal(open(registry, { config: { level: '2' } }).spec.max_episode_steps, 28);
  assert.equal(open(registry, { config: { max_episode_steps: '20' } }).spec.max_episode_steps, 20);
  // What Python's int() reads: leading zeros, a sign, spaces around, underscores between digits.
  for (const [text, steps] of [['007', 7], ['+5', 5], [' 6 ', 6], ['1_0', 10]]) {
    assert.equal(open(registry, { config: { max_episode_steps: text } }).spec.max_episode_steps, steps, text);
  }
  short.reset();
  let result;
  for (let t = 0; t < 4; t++) {
    result = short.step({ actions: action(0) });
    if (result.game_over !== 0 || result.time_out) break;
  }
  assert.ok(result.game_over !== 0 || result.time_out, 'ended within 4 steps');
  assert.ok(short.game.steps <= 4);
  const bad = [
    ['0', 'is outside 1..28'],
    ['-5', 'is outside 1..28'],
    ['29', "level 2's own limit is 28"],
    ['1.5', "'1.5' is not an integer"],
    ['', "'' is not an integer"],
    ['1__0', "'1__0' is not an integer"],
    ['_10', "'_10' is not an integer"],
    ['0x10', "'0x10' is not an integer"],
    ['4e1', "'4e1' is not an integer"],
    ['0'.repeat(20) + '4', 'is not an integer'], // 21 characters, even if its value is 4
    ['9'.repeat(20), 'is outside 1..28'],
  ];
  for (const [value, fragment] of bad) {
    const config = { level: '2', max_episode_steps: value };
    rejects(() => open(registry, { config }), status.INVALID_ARGUMENT, `config 'max_episode_steps': `);
    rejects(() => open(registry, { config }), status.INVALID_ARGUMENT, fragment);
  }
});

test('StepMany: another step limit is another spec', () => {
  const registry = new Registry();
  const [a, b] = [open(registry), open(registry, { config: { max_episode_steps: '5' } })];
  [a, b].forEach((s) => s.reset());
  rejects(
    () => registry.stepMany({ session_ids: [a.id, b.id], actions: batch(1, 1) }),
    status.INVALID_ARGUMENT,
    'session_ids[1] has another spec',
  );
  const c = open(registry, { config: { max_episode_steps: '5' } });
  c.reset();
  registry.stepMany({ session_ids: [b.id, c.id], actions: batch(1, 1) });
});

test('StepMany: a failing later row leaves the earlier rows unstepped (twin of the same seed)', () => {
  const registry = new Registry();
  const [a, twin, fresh] = [open(registry, { seed: '-77' }), open(registry, { seed: '-77' }), open(registry)];
  a.reset();
  twin.reset();
  for (const auto_reset of [false, true]) {
    rejects(
      () => registry.stepMany({ session_ids: [a.id, fresh.id], actions: batch(3, 3), auto_reset }),
      status.FAILED_PRECONDITION,
      'session_ids[1]: session',
    );
  }
  rejects(
    () => registry.stepMany({ session_ids: [a.id, twin.id], actions: batch(3, 3), actrep: -1 }),
    status.INVALID_ARGUMENT,
    'actrep',
  );
  assert.equal(a.game.steps, 0);
  for (const move of [3, 1, 2, 0]) {
    const [mine, theirs] = [a, twin].map((s) => s.step({ actions: action(move) }));
    assert.deepEqual(mine, theirs);
    if (mine.game_over !== 0 || mine.time_out) break;
  }
});

test('the reaper tells a reaped session (a Session stream ends itself); a closed one says why', () => {
  const registry = new Registry({ idleTimeoutS: 1 });
  const watched = open(registry);
  const calls = [];
  watched.onReaped = () => calls.push(watched.id);
  const closed = open(registry);
  registry.close(closed.id);
  rejects(() => closed.reset(), status.NOT_FOUND, 'was closed (by CloseSession)');
  registry.reapIdle(Date.now() + 1500);
  assert.deepEqual(calls, [watched.id]);
  rejects(() => watched.reset(), status.NOT_FOUND, 'was closed (idle past the timeout)');
});

test('messages quote at most 64 characters of a client string', () => {
  const registry = new Registry();
  const long = 'k'.repeat(100000);
  const quotedLong = `'${'k'.repeat(64)}'...(100000 chars)`;
  for (const work of [
    () => registry.get(long),
    () => open(registry, { config: { [long]: '1' } }),
    () => open(registry, { config: { level: long } }),
    () => open(registry, { config: { max_episode_steps: long } }),
    () => registry.stepMany({ session_ids: [long], actions: batch(1) }),
  ]) {
    assert.throws(work, (err) => err.message.includes(quotedLong) && err.message.length < 300);
  }
  const session = open(registry);
  session.reset();
  const unknown = { [long]: action(1).action };
  rejects(() => session.step({ actions: unknown }), status.INVALID_ARGUMENT, `unknown action ${quotedLong}`);
  // Characters are code points: an emoji is one, and a pair is never cut in half.
  rejects(() => registry.get('😀'.repeat(65)), status.NOT_FOUND, `'${'😀'.repeat(64)}'...(65 chars)`);
  rejects(() => registry.get('x'.repeat(64)), status.NOT_FOUND, `no session '${'x'.repeat(64)}'`);
});
