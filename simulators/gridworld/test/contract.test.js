'use strict';
// The contract's answers end to end, as FLARE's Python server gives them: each test checks
// the exact status code a client sees, and then that the server still serves a
// well-behaved session (assertServes).

const assert = require('node:assert/strict');
const net = require('node:net');
const { test } = require('node:test');

const grpc = require('@grpc/grpc-js');

const { SIMULATOR, withServer, call, status, action, batch, stream, play, assertServes } = require('./support');

const { INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, RESOURCE_EXHAUSTED, CANCELLED } = grpc.status;
const open = (client, extra = {}) => call(client, 'OpenSession', { protocol_version: 1, config: {}, ...extra });
const LIMIT = { timeout: 30000 }; // a server that never answers fails the test, not the run
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test('bytes that do not parse are INVALID_ARGUMENT on every method, unary and streaming', LIMIT, async () => {
  await withServer([], async (client, { address }) => {
    // A raw client: identity serializers send the bytes as they are.
    const raw = new grpc.Client(address, grpc.credentials.createInsecure());
    const same = (bytes) => bytes;
    const garbage = Buffer.from([0xff, 0xff, 0xff]);
    try {
      for (const [name, method] of Object.entries(SIMULATOR)) {
        const details = `the request could not be parsed as flare.simulator.v1.${method.requestType.type.name}`;
        let err;
        if (method.requestStream) {
          const bidi = raw.makeBidiStreamRequest(method.path, same, same);
          err = await new Promise((resolve) => {
            bidi.on('data', () => {});
            bidi.on('error', resolve);
            bidi.on('end', () => resolve(null));
            bidi.write(garbage);
            bidi.end();
          });
        } else {
          err = await new Promise((resolve) => raw.makeUnaryRequest(method.path, same, same, garbage, resolve));
        }
        assert.ok(err, `${name} answered garbage with OK`);
        assert.equal(err.code, INVALID_ARGUMENT, `${name}: ${grpc.status[err.code]} ${err.details}`);
        assert.equal(err.details, details);
      }
      // A string field that is not UTF-8 does not parse either (as in Python's protobuf).
      const badUtf8 = Buffer.from([0x0a, 0x02, 0xff, 0xfe]); // field 1 (session_id): ff fe
      const err8 = await new Promise((resolve) => raw.makeUnaryRequest(SIMULATOR.Reset.path, same, same, badUtf8, resolve));
      status(INVALID_ARGUMENT, /^the request could not be parsed as flare\.simulator\.v1\.ResetRequest$/)(err8);
      // Garbage after a good `open` ends the stream and closes its session.
      const bidi = raw.makeBidiStreamRequest(SIMULATOR.Session.path, same, same);
      const answers = [];
      const err = await new Promise((resolve) => {
        bidi.on('data', (bytes) => answers.push(SIMULATOR.Session.responseDeserialize(bytes)));
        bidi.on('error', resolve);
        bidi.write(SIMULATOR.Session.requestSerialize({ open: { protocol_version: 1 } }));
        bidi.write(garbage);
      });
      assert.equal(err.code, INVALID_ARGUMENT);
      assert.equal(answers.length, 1);
      await assert.rejects(call(client, 'GetSpec', { session_id: answers[0].open.session_id }), status(NOT_FOUND));
    } finally {
      raw.close();
    }
    await assertServes(client);
  });
});

test('Session stream: open first and once; reset and step name no other session', LIMIT, async () => {
  await withServer([], async (client) => {
    const other = await open(client);
    const first = { open: { protocol_version: 1 } };
    const cases = [
      [[{ reset: {} }], FAILED_PRECONDITION, /first message of a stream must be `open`/],
      [[first, first], FAILED_PRECONDITION, /already has a session/],
      [
        [first, { reset: { session_id: other.session_id } }],
        INVALID_ARGUMENT,
        /reset\.session_id '[0-9a-f]+' names another session/,
      ],
      [
        [first, { reset: {} }, { step: { session_id: 'nope', actions: action(1) } }],
        INVALID_ARGUMENT,
        /step\.session_id 'nope' names another session/,
      ],
    ];
    for (const [messages, code, pattern] of cases) {
      const { err } = await stream(client, 'Session', messages).done;
      assert.ok(err, `${JSON.stringify(messages)} ended OK`);
      status(code, pattern)(err);
    }
    // The other session was not touched: it still wants its first reset.
    await assert.rejects(
      call(client, 'Step', { session_id: other.session_id, actions: action(1) }),
      status(FAILED_PRECONDITION),
    );

    // An empty session_id, or the stream's own, is fine.
    const { call: own, done } = stream(client, 'Session', [{ open: { protocol_version: 1 } }], { end: false });
    const id = await new Promise((resolve) => own.once('data', (answer) => resolve(answer.open.session_id)));
    // (A reset before each step: one step may end the episode, a second would then fail.)
    own.write({ reset: { session_id: id } });
    own.write({ step: { session_id: '', actions: action(1) } });
    own.write({ reset: {} });
    own.write({ step: { session_id: id, actions: action(2) } });
    own.end();
    const { answers, err } = await done;
    assert.equal(err, null);
    assert.deepEqual(answers.map((a) => a.response), ['open', 'reset', 'step', 'reset', 'step']);
    await assertServes(client);
  });
});

test('a Session stream whose session the idle reaper closes ends CANCELLED', LIMIT, async () => {
  await withServer(['--idle-timeout', '1'], async (client) => {
    const { call: paused, done } = stream(client, 'Session', [{ open: { protocol_version: 1 } }, { reset: {} }], {
      end: false,
    });
    const { answers, err } = await done; // the client sends nothing more: the session goes idle
    assert.deepEqual(answers.map((a) => a.response), ['open', 'reset']);
    status(CANCELLED, /session [0-9a-f]+ was closed after being idle for over 1s/)(err);
    paused.end();
    await assertServes(client);
  });
});

test('protocol_version 0 (UNSPECIFIED) or unknown is FAILED_PRECONDITION, unary and on a stream', LIMIT, async () => {
  await withServer([], async (client) => {
    for (const version of [0, 2, 7]) {
      await assert.rejects(open(client, { protocol_version: version }), status(FAILED_PRECONDITION, /this server speaks 1/));
      const { answers, err } = await stream(client, 'Session', [{ open: { protocol_version: version } }]).done;
      assert.deepEqual(answers, []);
      status(FAILED_PRECONDITION, new RegExp(`protocol_version ${version} is not supported`))(err);
    }
    await assertServes(client);
  });
});

test('every int64 seed plays deterministically, negative ones and the limits included', LIMIT, async () => {
  await withServer([], async (client) => {
    const moves = [0, 1, 2, 3, 1, 1, 3, 3, 0, 2, 1, 3];
    const replay = async (seed) => {
      const session = await open(client, { config: { level: '3' }, seed });
      return play(client, session.session_id, moves);
    };
    const seeds = ['-9223372036854775808', '9223372036854775807', '-1', '-42', '0'];
    const runs = new Map();
    for (const seed of seeds) {
      const first = await replay(seed);
      assert.deepEqual(await replay(seed), first, `seed ${seed} replays`);
      runs.set(seed, first.join());
    }
    assert.equal(new Set(runs.values()).size, seeds.length, 'distinct seeds, distinct games');
    await assertServes(client);
  });
});

test('error messages quote at most 64 characters of what the client sent', LIMIT, async () => {
  await withServer([], async (client) => {
    const long = 'x'.repeat(100000);
    const short = /'x{64}'\.\.\.\(100000 chars\)/;
    const brief = (code, pattern) => (err) => status(code, pattern)(err) && err.details.length < 300;
    for (const method of ['Reset', 'GetSpec', 'CloseSession']) {
      await assert.rejects(call(client, method, { session_id: long }), brief(NOT_FOUND, short), method);
    }
    await assert.rejects(call(client, 'Step', { session_id: long, actions: action(1) }), brief(NOT_FOUND, short));
    await assert.rejects(
      call(client, 'StepMany', { session_ids: [long], actions: batch(1) }),
      brief(NOT_FOUND, short),
    );
    await assert.rejects(open(client, { config: { [long]: '1' } }), brief(INVALID_ARGUMENT, short));
    await assert.rejects(open(client, { config: { level: long } }), brief(INVALID_ARGUMENT, short));
    await assert.rejects(open(client, { config: { max_episode_steps: long } }), brief(INVALID_ARGUMENT, short));
    const session = await open(client);
    await call(client, 'Reset', { session_id: session.session_id });
    const unknown = { [long]: action(1).action };
    await assert.rejects(
      call(client, 'Step', { session_id: session.session_id, actions: unknown }),
      brief(INVALID_ARGUMENT, short),
    );
    // A shape of 100,000 dims is shown by its first dims and its length.
    const wide = { action: { dtype: 4, shape: new Array(100000).fill(1), data: Buffer.alloc(8) } };
    await assert.rejects(
      call(client, 'Step', { session_id: session.session_id, actions: wide }),
      brief(INVALID_ARGUMENT, /shape \[1, 1, 1, 1, 1, 1, 1, 1, \.\.\.\(100000 dims\)\], the spec says \[1\]/),
    );
    const { err } = await stream(client, 'Session', [{ open: { protocol_version: 1 } }, { reset: { session_id: long } }])
      .done;
    assert.ok(brief(INVALID_ARGUMENT, short)(err));
    await assertServes(client);
  });
});

test('--max-sessions-per-client: past the quota, OpenSession and a stream open are RESOURCE_EXHAUSTED', LIMIT, async () => {
  await withServer(['--max-sessions-per-client', '2'], async (client) => {
    const quota = /client '127\.0\.0\.1' already has its quota of 2 open sessions \(--max-sessions-per-client\)/;
    const first = await open(client);
    await open(client);
    await assert.rejects(open(client), status(RESOURCE_EXHAUSTED, quota));
    const { err } = await stream(client, 'Session', [{ open: { protocol_version: 1 } }]).done;
    status(RESOURCE_EXHAUSTED, quota)(err);
    // Closing one frees its slot; a stream's session holds one only while the stream lives.
    await call(client, 'CloseSession', { session_id: first.session_id });
    const { answers, err: ok } = await stream(client, 'Session', [{ open: { protocol_version: 1 } }]).done;
    assert.equal(ok, null);
    assert.equal(answers.length, 1);
    await assertServes(client); // one slot free: a unary session, closed, then a stream's
  });
});

/** The type (and flags) of every HTTP/2 frame in `bytes`, and what is left over. */
function frames(bytes) {
  const found = [];
  let at = 0;
  while (bytes.length - at >= 9) {
    const length = bytes.readUIntBE(at, 3);
    if (bytes.length - at < 9 + length) break;
    found.push({ type: bytes[at + 3], flags: bytes[at + 4] });
    at += 9 + length;
  }
  return { found, rest: bytes.subarray(at) };
}

test('keepalive: the server pings, and closes a connection whose client never answers', LIMIT, async () => {
  await withServer(['--keepalive-s', '0.3', '--keepalive-timeout-s', '0.3'], async (client, { address }) => {
    // A client that speaks just enough HTTP/2 to connect (the preface and empty SETTINGS)
    // and then never answers, like a paused or vanished process.
    const colon = address.lastIndexOf(':');
    const socket = net.connect(Number(address.slice(colon + 1)), address.slice(0, colon));
    const seen = [];
    let pending = Buffer.alloc(0);
    const started = Date.now();
    const closed = new Promise((resolve) => {
      socket.on('data', (chunk) => {
        const { found, rest } = frames(Buffer.concat([pending, chunk]));
        seen.push(...found);
        pending = rest;
      });
      socket.on('error', () => {});
      socket.on('close', resolve);
    });
    const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]); // length 0, type 4, no flags, stream 0
    socket.write(Buffer.concat([preface, settings]));
    const timer = setTimeout(() => socket.destroy(), 10000);
    await closed;
    clearTimeout(timer);
    const PING = 6;
    assert.ok(seen.some((frame) => frame.type === PING && (frame.flags & 1) === 0), 'the server sent a PING');
    assert.ok(Date.now() - started < 5000, 'the server closed the silent connection');

    // A live client answers the pings (its HTTP/2 stack does): its stream outlives several.
    const first = [{ open: { protocol_version: 1 } }, { reset: {} }];
    const { call: live, done } = stream(client, 'Session', first, { end: false });
    await sleep(1500);
    live.write({ step: { actions: action(1) } });
    live.end();
    const { answers, err } = await done;
    assert.equal(err, null);
    assert.deepEqual(answers.map((a) => a.response), ['open', 'reset', 'step']);
    await assertServes(client);
  });
});

test('StepMany: no ids, duplicate ids, a row never reset (auto_reset too); no row is stepped', LIMIT, async () => {
  await withServer([], async (client) => {
    const [a, twin, fresh] = [await open(client, { seed: '9' }), await open(client, { seed: '9' }), await open(client)];
    await call(client, 'Reset', { session_id: a.session_id });
    await call(client, 'Reset', { session_id: twin.session_id });
    const stepMany = (ids, actions, extra = {}) => call(client, 'StepMany', { session_ids: ids, actions, ...extra });
    await assert.rejects(stepMany([], batch()), status(INVALID_ARGUMENT, /session_ids is empty/));
    await assert.rejects(stepMany([a.session_id, a.session_id], batch(1, 1)), status(INVALID_ARGUMENT, /once per call/));
    for (const auto_reset of [false, true]) {
      await assert.rejects(
        stepMany([a.session_id, fresh.session_id], batch(1, 1), { auto_reset }),
        status(FAILED_PRECONDITION, /session_ids\[1\]: session/),
      );
    }
    // Row 0 was not stepped: it steps on exactly as its twin, which never took part.
    const moves = [3, 1, 2, 0, 1];
    for (const move of moves) {
      const step = (session) => call(client, 'Step', { session_id: session.session_id, actions: action(move) });
      const [left, right] = await Promise.all([step(a), step(twin)]);
      assert.deepEqual(left, right);
      if (left.game_over !== 0 || left.time_out) break;
    }
    await assertServes(client);
  });
});

test('a negative actrep is INVALID_ARGUMENT on Step, StepMany, StepManyStream and the Session stream', LIMIT, async () => {
  await withServer([], async (client) => {
    const session = await open(client);
    await call(client, 'Reset', { session_id: session.session_id });
    const negative = /actrep must be >= 0 \(0 means 1\), got -1/;
    await assert.rejects(
      call(client, 'Step', { session_id: session.session_id, actions: action(1), actrep: -1 }),
      status(INVALID_ARGUMENT, negative),
    );
    const many = { session_ids: [session.session_id], actions: batch(1), actrep: -1 };
    await assert.rejects(call(client, 'StepMany', many), status(INVALID_ARGUMENT, negative));
    status(INVALID_ARGUMENT, negative)((await stream(client, 'StepManyStream', [many]).done).err);
    const { answers, err } = await stream(client, 'Session', [
      { open: { protocol_version: 1 } },
      { reset: {} },
      { step: { actions: action(1), actrep: -1 } },
    ]).done;
    assert.deepEqual(answers.map((a) => a.response), ['open', 'reset']);
    status(INVALID_ARGUMENT, negative)(err);
    // None of them stepped the session: a step now is its first.
    await call(client, 'Step', { session_id: session.session_id, actions: action(1), actrep: 0 });
    await assertServes(client);
  });
});

test('config max_episode_steps shortens the episode, and the spec says so; a bad value names the key', LIMIT, async () => {
  await withServer([], async (client) => {
    const session = await open(client, { config: { level: '2', max_episode_steps: '3' }, seed: '5' });
    assert.equal(session.spec.max_episode_steps, '3');
    assert.equal((await call(client, 'GetSpec', { session_id: session.session_id })).spec.max_episode_steps, '3');
    await call(client, 'Reset', { session_id: session.session_id });
    let ended = null; // the step that ended the episode: a game over, or the time-out at 3
    for (let t = 1; t <= 3 && ended === null; t++) {
      const step = await call(client, 'Step', { session_id: session.session_id, actions: action(0) });
      if (step.game_over !== 0 || step.time_out) ended = { t, step };
    }
    assert.ok(ended !== null, 'the episode ends by step 3');
    if (ended.step.time_out) assert.equal(ended.t, 3);
    await assert.rejects(
      call(client, 'Step', { session_id: session.session_id, actions: action(0) }),
      status(FAILED_PRECONDITION, /call Reset first/),
    );
    for (const bad of ['0', '-1', '29', '1.5', 'ten', '', '3 3', '0'.repeat(20) + '3']) {
      await assert.rejects(
        open(client, { config: { level: '2', max_episode_steps: bad } }),
        status(INVALID_ARGUMENT, /config 'max_episode_steps'/),
        `max_episode_steps ${JSON.stringify(bad)}`,
      );
    }
    await open(client, { config: { level: '2', max_episode_steps: '28' } }); // the level's own limit
    await assertServes(client);
  });
});
