'use strict';
// Client mode end to end: client.js as a real process against a fake learner (an Act
// server built in this file from the repository's learner.proto), and a server-mode
// session of the same seed to compare its episodes with.

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');
const { after, before, test } = require('node:test');

const grpc = require('@grpc/grpc-js');

const { LEARNER_PROTO, loadProto } = require('../protos');
const { decode, encode } = require('../tensors');
const { Simulator, start, call, stream } = require('./support');

const CLIENT = path.resolve(__dirname, '../client.js');
const LEARNER = loadProto(LEARNER_PROTO)['flare.learner.v1.Learner'];
const LIMIT = { timeout: 30000 };
const CLIENT_LIMIT_MS = 20000; // a client that hangs is killed (and fails its test) before the test's own limit
const { INVALID_ARGUMENT, UNAVAILABLE } = grpc.status;

// The fake learner's moves, by the step's number in its stream: a mix that meets walls,
// targets and the step limit.
const MOVES = [1, 3, 0, 2, 2, 1, 3, 0, 0, 3, 1, 2];
const moveOf = (n) => MOVES[n % MOVES.length];
const actionTensor = (value) => ({ action: encode('int64', [1], BigInt64Array.of(BigInt(value))) });

/**
 * A fake learner on 127.0.0.1. Each Act stream is recorded: the requests in order, the
 * replies, any request that came before the reply to the one before (a broken
 * alternation), whether the client half-closed or cancelled, and the games it played.
 *
 * The default play: `opened`, then the next move for every step, `episode_over` for a
 * step that ended its episode, and OK once `budget` games of the stream are played.
 * `script({stream, step, message, games})`, when given, may take over a step (step 0 is
 * the open): it returns null (the default play) or one of {error: {code, details}},
 * {end: true} (OK now), {stall: true} (never answer) or {reply}. `agent` is the agent of
 * every stream, or a function of the stream's index (in the order the streams came).
 */
async function fakeLearner({ budget = Infinity, script = () => null, agent = 3, runName = 'test-run' } = {}) {
  const streams = [];
  const server = new grpc.Server();
  server.addService(LEARNER, {
    Act(call) {
      const record = { requests: [], replies: [], early: [], halfClosed: false, cancelled: false, games: 0 };
      streams.push(record);
      const index = streams.length - 1;
      let pending = false;
      let finished = false;
      let steps = 0;
      const finish = (error) => {
        if (finished) return;
        finished = true;
        if (error) call.emit('error', error);
        else call.end();
      };
      const reply = (message) => {
        record.replies.push(message);
        call.write(message);
      };
      const answer = (message) => {
        const step = record.requests.length - 1;
        const scripted = script({ stream: index, step, message, games: record.games });
        if (scripted && scripted.stall) return;
        if (scripted && scripted.error) return finish(scripted.error);
        if (scripted && scripted.end) return finish();
        if (scripted && scripted.reply) return reply(scripted.reply);
        if (message.request === 'open') {
          const id = typeof agent === 'function' ? agent(index) : agent;
          return reply({ opened: { agent: id, run_name: runName, protocol_version: 1, policy_version: 17 } });
        }
        const { game_over: gameOver, time_out: timeOut } = message.step;
        if (gameOver !== 0 || timeOut) {
          record.games += 1;
          reply({ actions: { actions: {}, policy_version: 17, episode_over: true } });
          if (record.games >= budget) finish();
          return;
        }
        reply({ actions: { actions: actionTensor(moveOf(steps++)), policy_version: 17 } });
      };
      call.on('data', (message) => {
        if (finished) return;
        if (pending) record.early.push(record.requests.length);
        record.requests.push(message);
        pending = true;
        // A moment before each answer: a client that does not wait for it is caught.
        setTimeout(() => {
          pending = false;
          if (!finished) answer(message);
        }, 2);
      });
      call.on('end', () => {
        record.halfClosed = true;
        finish();
      });
      call.on('cancelled', () => {
        record.cancelled = true;
        finished = true;
      });
    },
  });
  const port = await new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  return { address: `127.0.0.1:${port}`, streams, close: () => server.forceShutdown() };
}

/** Run client.js; resolves with its exit code, stdout and stderr. `onStart` gets the process. */
function runClient(args, onStart = () => {}) {
  const child = spawn(process.execPath, [CLIENT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  onStart(child);
  const timer = setTimeout(() => child.kill('SIGKILL'), CLIENT_LIMIT_MS);
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

// The seed of a run whose args give none: every run is deterministic. With MOVES, its first
// level-1 episode lasts 10 steps, so what a test does at its first few steps happens mid-episode.
const SEED = '1';

/** A learner for `options`, a client of it run with `args`; the learner is stopped afterwards. */
async function play(options, args, onStart) {
  const learner = await fakeLearner(options);
  const seeded = args.some((arg) => arg.startsWith('--seed')) ? args : [...args, '--seed', SEED];
  try {
    const result = await runClient(['--learner', learner.address, ...seeded], onStart);
    return { ...result, streams: learner.streams };
  } finally {
    learner.close();
  }
}

const tensorView = (t) => ({ dtype: t.dtype, shape: t.shape.map(String), data: t.data.toString('hex') });
const tensorsView = (map) => Object.fromEntries(Object.keys(map).sort().map((name) => [name, tensorView(map[name])]));
const steps = (record) => record.requests.filter((m) => m.request === 'step').map((m) => m.step);
const isFirst = (step) =>
  Object.keys(step.rewards).length === 0 && step.game_over === 0 && step.time_out === false && step.new_episode === false;
const ended = (step) => step.game_over !== 0 || step.time_out;

/**
 * A server-mode session opened with `config` and `seed`, given the same actions, sees the
 * same episodes as `record`: every step the client sent is the server's answer to the
 * reset or step it stands for.
 */
async function assertServerPlays(record, config, seed) {
  const all = steps(record);
  const messages = [{ open: { protocol_version: 1, config, seed } }];
  all.forEach((step, i) => {
    if (isFirst(step)) messages.push({ reset: {} });
    const reply = record.replies[i + 1].actions;
    if (!reply.episode_over) messages.push({ step: { actions: reply.actions } });
  });
  const { answers, err } = await stream(simulator, 'Session', messages).done;
  assert.equal(err, null);
  const served = answers.slice(1).map((answer) => answer[answer.response]);
  assert.equal(served.length, all.length);
  served.forEach((answer, i) => {
    assert.deepEqual(tensorsView(all[i].observations), tensorsView(answer.observations), `seed ${seed}, step ${i}: observations`);
    if (answer.rewards !== undefined) {
      assert.deepEqual(tensorsView(all[i].rewards), tensorsView(answer.rewards), `seed ${seed}, step ${i}: rewards`);
      assert.deepEqual([all[i].game_over, all[i].time_out], [answer.game_over, answer.time_out], `seed ${seed}, step ${i}: ending`);
    }
  });
}

/** With --streams: the client's stream index of each connect line, by the agent it printed. */
const connections = (stdout) =>
  [...stdout.matchAll(/^gridworld client stream (\d+) connected to 127\.0\.0\.1:\d+: agent (\d+) of run 'test-run' \(policy version 17\)$/gm)].map(
    (match) => ({ stream: Number(match[1]), agent: Number(match[2]) }),
  );

let server; // a server-mode grid world, for the spec and the episodes to compare with
let simulator;
before(async () => {
  server = await start();
  simulator = new Simulator(server.address, grpc.credentials.createInsecure());
});
after(() => {
  simulator.close();
  server.child.kill('SIGTERM');
});

const serverSpec = async (config) =>
  (await call(simulator, 'OpenSession', { protocol_version: 1, config })).spec;

test('a whole run: open, strict alternation, first steps, rewards one step later, episode ends, OK end', LIMIT, async () => {
  const seed = '7';
  const run = await play({ budget: 6 }, ['--level', '1', '--seed', seed, '--max-episode-steps', '4', '--name', 'test-sim', '--reconnect']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.streams.length, 1, 'an OK end is never reconnected, --reconnect or not');
  const [record] = run.streams;
  assert.deepEqual(record.early, [], 'a request came before the reply to the one before');
  assert.equal(record.halfClosed, false);

  // The open: protocol version, the server mode's spec for the same config, the name.
  const [first, ...rest] = record.requests;
  assert.equal(first.request, 'open');
  assert.equal(first.open.protocol_version, 1);
  assert.deepEqual(first.open.config, { name: 'test-sim' });
  assert.deepEqual(first.open.spec, await serverSpec({ level: '1', max_episode_steps: '4' }));
  assert.ok(rest.every((m) => m.request === 'step'));

  // Episodes: the first step of each bare; later ones carry the previous actions' results.
  const all = steps(record);
  assert.ok(isFirst(all[0]));
  let inEpisode = 0;
  const outcomes = [];
  all.forEach((step, i) => {
    const reply = record.replies[i + 1].actions;
    if (i > 0 && ended(all[i - 1])) {
      assert.ok(isFirst(step), `step ${i} follows an episode's end: it must be a first step`);
    }
    if (isFirst(step)) {
      inEpisode = 0;
    } else {
      inEpisode += 1;
      assert.deepEqual(Object.keys(step.rewards), ['reward']);
      const reward = decode(step.rewards.reward);
      assert.deepEqual([reward.dtype, reward.shape], [1, [1]]);
      assert.ok([-1, 0, 1].includes(step.game_over));
      assert.ok(!(step.game_over !== 0 && step.time_out), 'game_over and time_out together');
      assert.equal(step.time_out, step.game_over === 0 && inEpisode === 4, 'time_out exactly at the step limit');
      assert.equal(reward.values[0], step.game_over, 'this game rewards only its ends');
    }
    assert.equal(step.new_episode, false);
    assert.equal(Boolean(reply.episode_over), ended(step), `reply ${i + 1}`);
    if (ended(step)) outcomes.push(step.time_out ? 'time_out' : step.game_over);
  });
  assert.equal(outcomes.length, 6);
  assert.ok(outcomes.includes('time_out') && (outcomes.includes(1) || outcomes.includes(-1)), outcomes.join(' '));

  // The same seed in server mode, given the same actions, sees the same episodes.
  await assertServerPlays(record, { level: '1', max_episode_steps: '4' }, seed);

  assert.match(run.stdout, /^gridworld client connected to 127\.0\.0\.1:\d+: agent 3 of run 'test-run' \(policy version 17\)$/m);
  assert.match(run.stdout, /^gridworld client: 6 games played; the learner ended the stream \(OK\)$/m);
  assert.equal(run.stderr, '');
});

test('the spec of every level (and a shorter step limit) is the server mode spec', LIMIT, async () => {
  for (const [args, config] of [
    [['--level', '2', '--max-episode-steps', '7', '--name', ''], { level: '2', max_episode_steps: '7' }],
    [['--level', '3'], { level: '3' }],
  ]) {
    const run = await play({ script: ({ step }) => (step === 0 ? null : { end: true }) }, args);
    assert.equal(run.code, 0, run.stderr);
    const { open } = run.streams[0].requests[0];
    assert.deepEqual(open.spec, await serverSpec(config));
    assert.deepEqual(open.config, args.includes('--name') ? {} : { name: 'gridworld' });
    assert.match(run.stdout, /0 games played; the learner ended the stream \(OK\)$/m);
  }
});

test('--games N: the client closes the stream after N games and exits 0', LIMIT, async () => {
  const run = await play({}, ['--games', '2', '--seed', '1', '--max-episode-steps', '3']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.streams.length, 1);
  const [record] = run.streams;
  assert.equal(record.halfClosed, true);
  assert.equal(record.games, 2);
  assert.ok(ended(steps(record).at(-1)), 'the last step ended the second game');
  assert.match(run.stdout, /2 games played; played the 2 games of --games and closed the stream \(the learner answered OK\)$/m);
});

test('an error status: exit 1 with its code and message, and no reconnect', LIMIT, async () => {
  const error = { code: INVALID_ARGUMENT, details: "observations['image']: shape [1], the run's models read [3, 5, 5]" };
  const run = await play({ script: ({ step }) => (step === 3 ? { error } : null) }, ['--reconnect', '--seed', '2']);
  assert.equal(run.code, 1);
  assert.equal(run.streams.length, 1, 'only UNAVAILABLE is retried');
  assert.match(run.stderr, /0 games played; the stream ended with INVALID_ARGUMENT: observations\['image'\]: shape \[1\]/);
  assert.match(run.stderr, /the episode in play was interrupted/);
});

test('--reconnect: UNAVAILABLE is retried with a backoff, a bounded number of times', LIMIT, async () => {
  const unavailable = { error: { code: UNAVAILABLE, details: 'the run has not started' } };
  // Once: the second stream plays on, a new episode of the same random stream.
  const once = await play({ budget: 1, script: ({ stream, step }) => (stream === 0 && step === 0 ? unavailable : null) }, [
    '--reconnect',
    '--seed',
    '3',
  ]);
  assert.equal(once.code, 0, once.stderr);
  assert.equal(once.streams.length, 2);
  assert.match(once.stderr, /UNAVAILABLE: the run has not started; reconnecting in 0\.25 s \(1 of 8\)/);
  assert.match(once.stdout, /1 game played; the learner ended the stream \(OK\)$/m);
  // Always: given up after --reconnect-tries retries, with the status.
  const always = await play({ script: () => unavailable }, ['--reconnect', '--reconnect-tries', '2']);
  assert.equal(always.code, 1);
  assert.equal(always.streams.length, 3);
  assert.match(always.stderr, /UNAVAILABLE: the run has not started; gave up after 2 reconnects in a row$/m);
  // Without --reconnect: the first UNAVAILABLE is the end.
  const never = await play({ script: () => unavailable }, []);
  assert.equal(never.code, 1);
  assert.equal(never.streams.length, 1);
  assert.match(never.stderr, /the stream ended with UNAVAILABLE: the run has not started$/m);
});

test('SIGTERM or SIGINT closes the stream cleanly (half-close) and exits 0', LIMIT, async () => {
  for (const signal of ['SIGTERM', 'SIGINT']) {
    let child;
    const run = await play(
      {
        script: ({ step }) => {
          if (step !== 3) return null;
          child.kill(signal); // the client waits on this step's reply
          return { stall: true };
        },
      },
      [],
      (started) => (child = started),
    );
    assert.equal(run.code, 0, run.stderr);
    const [record] = run.streams;
    assert.equal(record.halfClosed, true);
    assert.equal(record.requests.length, 4);
    assert.ok(
      run.stdout.endsWith(
        `0 games played; stopped by ${signal} (the episode in play was interrupted); ` +
          'the stream was closed (the learner answered OK)\n',
      ),
      run.stdout,
    );
  }
});

test("the learner's mistakes: bad actions, a wrong reply, no reply in time", LIMIT, async () => {
  const bad = await play({ script: ({ step }) => (step === 2 ? { reply: { actions: { actions: actionTensor(9) } } } : null) }, []);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /the learner sent bad actions: actions\['action'\]: value 9 is outside 0\.\.3; the stream was cancelled/);
  assert.equal(bad.streams[0].cancelled, true);

  const wrong = await play({ script: ({ step }) => (step === 1 ? { reply: { opened: { agent: 1 } } } : null) }, []);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /the learner broke the Act protocol: it answered a `step` with `opened`/);

  const early = await play({ script: ({ step }) => (step === 1 ? { reply: { actions: { episode_over: true } } } : null) }, []);
  assert.equal(early.code, 1);
  assert.match(early.stderr, /episode_over answered a step that did not end the episode/);

  const slow = await play({ script: ({ step }) => (step === 2 ? { stall: true } : null) }, ['--timeout-s', '0.3']);
  assert.equal(slow.code, 1);
  assert.match(slow.stderr, /no reply from the learner within 0\.3 s; the stream was cancelled/);
});

// --streams: the fake learner's agent is 100 + the stream's index in its order, so the
// client's connect lines map its stream indices to the learner's records.
const byAgent = (index) => 100 + index;

test('--streams 3: three streams at once, stream i seeded seed + i; exit 0 when the learner ends all with OK', LIMIT, async () => {
  const seed = 5;
  const run = await play({ budget: 2, agent: byAgent }, ['--streams', '3', '--seed', String(seed), '--max-episode-steps', '4']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stderr, '');
  assert.equal(run.streams.length, 3);
  const connected = connections(run.stdout);
  assert.deepEqual(connected.map((c) => c.stream).sort(), [0, 1, 2], run.stdout);
  assert.deepEqual(connected.map((c) => c.agent).sort(), [100, 101, 102]);
  const spec = await serverSpec({ level: '1', max_episode_steps: '4' });
  const firstImages = new Set();
  for (const { stream: index, agent } of connected) {
    const record = run.streams[agent - 100];
    assert.deepEqual(record.early, [], `stream ${index}: a request came before the reply to the one before`);
    assert.equal(record.halfClosed, false);
    assert.equal(record.games, 2);
    assert.deepEqual(record.requests[0].open.spec, spec);
    await assertServerPlays(record, { level: '1', max_episode_steps: '4' }, String(seed + index));
    firstImages.add(steps(record)[0].observations.image.data.toString('hex'));
    assert.match(run.stdout, new RegExp(`^gridworld client stream ${index}: 2 games played; the learner ended the stream \\(OK\\)$`, 'm'));
  }
  assert.equal(firstImages.size, 3, 'each stream plays its own game');
  assert.ok(
    run.stdout.endsWith('gridworld client: 6 games played on 3 streams (per stream: 2, 2, 2); every stream ended cleanly\n'),
    run.stdout,
  );
});

test('--streams 3: one stream ends with an error status, the others OK: exit 1, the failing stream named', LIMIT, async () => {
  const error = { code: INVALID_ARGUMENT, details: 'stream one is refused' };
  const run = await play(
    { budget: 1, agent: byAgent, script: ({ stream, step }) => (stream === 1 && step === 1 ? { error } : null) },
    ['--streams', '3', '--reconnect'],
  );
  assert.equal(run.code, 1);
  assert.equal(run.streams.length, 3, 'only UNAVAILABLE is retried');
  const connected = connections(run.stdout);
  assert.equal(connected.length, 3, run.stdout);
  const failing = connected.find((c) => c.agent === 101).stream;
  assert.match(
    run.stderr,
    new RegExp(`^gridworld client stream ${failing}: 0 games played; the stream ended with INVALID_ARGUMENT: stream one is refused$`, 'm'),
  );
  const games = [0, 1, 2].map((index) => (index === failing ? 0 : 1));
  for (const index of [0, 1, 2].filter((i) => i !== failing)) {
    assert.match(run.stdout, new RegExp(`^gridworld client stream ${index}: 1 game played; the learner ended the stream \\(OK\\)$`, 'm'));
  }
  assert.ok(
    run.stderr.endsWith(`gridworld client: 2 games played on 3 streams (per stream: ${games.join(', ')}); stream ${failing} failed\n`),
    run.stderr,
  );
});

test('--streams 2 with --games and --reconnect: both count per stream', LIMIT, async () => {
  const unavailable = { error: { code: UNAVAILABLE, details: 'try again' } };
  const run = await play(
    { agent: byAgent, script: ({ stream, step }) => (stream === 0 && step === 1 ? unavailable : null) },
    ['--streams', '2', '--games', '2', '--reconnect', '--max-episode-steps', '3'],
  );
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.streams.length, 3, 'one stream reconnected, the other did not');
  const connected = connections(run.stdout);
  const retried = connected.find((c) => c.agent === 100).stream;
  assert.deepEqual(
    connected.filter((c) => c.stream === retried).map((c) => c.agent),
    [100, 102],
    'the stream that ended UNAVAILABLE opened a new one',
  );
  assert.match(
    run.stderr,
    new RegExp(`^gridworld client stream ${retried}: the stream ended with UNAVAILABLE: try again; reconnecting in 0\\.25 s \\(1 of 8\\)$`, 'm'),
  );
  assert.equal(run.stderr.split('\n').filter(Boolean).length, 1, run.stderr);
  for (const record of run.streams.slice(1)) {
    assert.equal(record.halfClosed, true);
    assert.equal(record.games, 2);
  }
  assert.ok(
    run.stdout.endsWith('gridworld client: 4 games played on 2 streams (per stream: 2, 2); every stream ended cleanly\n'),
    run.stdout,
  );
});

test('--streams 3: SIGTERM closes every stream cleanly and exits 0', LIMIT, async () => {
  let child;
  let stalled = 0;
  const run = await play(
    {
      agent: byAgent,
      script: ({ step }) => {
        if (step !== 3) return null;
        stalled += 1;
        if (stalled === 3) child.kill('SIGTERM'); // every stream waits on this step's reply
        return { stall: true };
      },
    },
    ['--streams', '3'],
    (started) => (child = started),
  );
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.streams.length, 3);
  for (const record of run.streams) {
    assert.equal(record.halfClosed, true);
    assert.equal(record.requests.length, 4);
  }
  for (const index of [0, 1, 2]) {
    assert.match(
      run.stdout,
      new RegExp(
        `^gridworld client stream ${index}: \\d+ games? played; stopped by SIGTERM( \\(the episode in play was interrupted\\))?; ` +
          'the stream was closed \\(the learner answered OK\\)$',
        'm',
      ),
    );
  }
  assert.match(run.stdout, /; every stream ended cleanly\n$/);
});

test('the command line: usage errors exit 2 before any connection', LIMIT, async () => {
  for (const [args, message] of [
    [[], /--learner HOST:PORT is required/],
    [['--learner', '10.1.2.3:50051'], /refusing to connect to '10\.1\.2\.3' without TLS/],
    [['--learner', '127.0.0.1:1', '--level', '4'], /--level: config 'level': '4' is not one of/],
  ]) {
    const run = await runClient(args);
    assert.equal(run.code, 2, args.join(' '));
    assert.match(run.stderr, message);
    assert.equal(run.stdout, '');
  }
  const { parseArguments, backoffMs, seedOf } = require('../client');
  const parse = (...args) => parseArguments(['--learner', '127.0.0.1:1', ...args]);
  for (const [args, message] of [
    [['--learner', 'nowhere'], /^--learner: 'nowhere' is not HOST:PORT$/],
    [['--learner', '127.0.0.1:1', '--max-episode-steps', '21'], /^--max-episode-steps: .*outside 1\.\.20/],
    [['--learner', '127.0.0.1:1', '--seed', '1.5'], /^--seed: '1\.5' is not an integer$/],
    [['--learner', '127.0.0.1:1', '--seed', '9223372036854775808'], /^--seed: .* is not an int64$/],
    [['--learner', '127.0.0.1:1', '--games', '0'], /^--games: bad value '0'$/],
    [['--learner', '127.0.0.1:1', '--reconnect-tries', '101'], /^--reconnect-tries: bad value '101'$/],
    [['--learner', '127.0.0.1:1', '--timeout-s', '0'], /^--timeout-s: bad value '0'$/],
    [['--learner', '127.0.0.1:1', '--name', 'x'.repeat(65)], /^--name: longer than 64 characters$/],
    [['--learner', '127.0.0.1:1', '--streams', '0'], /^--streams: bad value '0'$/],
    [['--learner', '127.0.0.1:1', '--streams', '257'], /^--streams: bad value '257'$/],
    [['--learner', '127.0.0.1:1', '--streams', '1.5'], /^--streams: bad value '1\.5'$/],
    [
      ['--learner', '127.0.0.1:1', '--streams', '3', '--seed', '9223372036854775806'],
      /^--seed: 9223372036854775806 \+ 2 \(the seed of stream 2 of --streams 3\) is not an int64$/,
    ],
  ]) {
    assert.throws(() => parseArguments(args), { message }, args.join(' '));
  }
  const defaults = parse();
  assert.deepEqual(
    [defaults.level, defaults.maxSteps, defaults.seed, defaults.streams, defaults.games, defaults.name, defaults.reconnect, defaults.reconnectTries, defaults.timeoutMs],
    ['1', 20, null, 1, null, 'gridworld', false, 8, 60000],
  );
  assert.equal(parse('--streams', '256', '--seed', '9223372036854775552').streams, 256);
  assert.deepEqual(
    [seedOf('9', 0), seedOf('9', 2), seedOf('-1', 1), seedOf('9223372036854775806', 1), seedOf(null, 2)],
    ['9', '11', '0', '9223372036854775807', null],
  );
  assert.equal(parse('--seed=-9223372036854775808').seed, '-9223372036854775808');
  assert.equal(parse('--seed', '+007').seed, '7');
  assert.equal(parse('--name', 'é'.repeat(64)).name.length, 64);
  assert.deepEqual([1, 2, 3, 5, 6, 8].map(backoffMs), [250, 500, 1000, 4000, 5000, 5000]);
});
