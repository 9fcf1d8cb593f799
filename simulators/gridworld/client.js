#!/usr/bin/env node
'use strict';
// The grid world in client mode: it runs its own loop and plays as an agent of a FLARE
// learner over the learner's Act stream (flare.learner.v1.Learner.Act), instead of
// serving flare.simulator.v1.Simulator as server.js does.
//
//   node simulators/gridworld/client.js --learner HOST:PORT [--level 1|2|3] [--seed N]
//        [--max-episode-steps N] [--streams N] [--games N] [--name NAME] [--reconnect]
//        [--reconnect-tries N] [--timeout-s S] [--insecure]
//
// The game is a server session's (sessions.js): the same config rules, the same spec, the
// same seeded random stream and the same checks of the actions, so one seed gives the
// same episodes in both modes. learner.proto is loaded at run time from the repository's
// protos/ directory (never a copy).
//
// With --streams N one process plays N Act streams at once, all in this one event loop:
// each has its own game (stream i a server session of seed + i), its own stream and
// channel, its own --games count and its own reconnects.

const fs = require('fs');
const util = require('util');

const grpc = require('@grpc/grpc-js');

const { ActStream, loadLearner, codeName, printable } = require('./act');
const { refuseUntrusted, splitAddress } = require('./address');
const { SimulatorError, quoted } = require('./errors');
const { seedBits } = require('./random');
const { Session, configOf, specMessage } = require('./sessions');

const NAME_CHARS = 64; // learner.proto: config "name" is at most 64 characters
const CLOSE_GRACE_MS = 5000; // after a half-close, the learner's status gets this long
const BACKOFF_FIRST_MS = 250; // --reconnect: the first wait, doubled per retry in a row...
const BACKOFF_MAX_MS = 5000; // ...up to this
const MAX_RECONNECT_TRIES = 100;
const MAX_STREAMS = 256;
const INT64_MAX = 2n ** 63n - 1n;
const MAX_TIMER_MS = 2 ** 31 - 1;

const USAGE = `usage: node client.js --learner HOST:PORT [--level 1|2|3] [--seed N] [--max-episode-steps N]
                      [--streams N] [--games N] [--name NAME] [--reconnect] [--reconnect-tries N]
                      [--timeout-s S] [--insecure]

  --learner HOST:PORT    the learner whose Act streams to play on (required)
  --level L              the grid world's level: 1 (default), 2 or 3
  --seed N               seeds the game's random stream (any int64), as a server session's seed
                         does (stream i: N + i); without it the episodes are random
  --max-episode-steps N  a shorter step limit, 1 .. the level's own 4*G
  --streams N            play N Act streams at once, each its own game (default 1, at most 256)
  --games N              close a stream and stop it after N games, counted per stream
                         (default: play until the learner ends the stream)
  --name NAME            the simulator's label in the learner's log, at most 64 characters
                         (default 'gridworld'; '' sends none)
  --reconnect            when a stream ends UNAVAILABLE, open a new one after a backoff
                         (0.25 s doubling to 5 s; a new episode starts); per stream
  --reconnect-tries N    reconnects in a row without a game played in between (default 8, at most 100)
  --timeout-s S          the longest wait for one reply of the learner (default 60)
  --insecure             allow a learner beyond loopback (this client has no TLS)`;

// ----- command line ------------------------------------------------------------------------

function parseArguments(argv) {
  const { values } = util.parseArgs({
    args: argv,
    options: {
      learner: { type: 'string' },
      level: { type: 'string', default: '1' },
      seed: { type: 'string' },
      'max-episode-steps': { type: 'string' },
      streams: { type: 'string', default: '1' },
      games: { type: 'string' },
      name: { type: 'string', default: 'gridworld' },
      reconnect: { type: 'boolean', default: false },
      'reconnect-tries': { type: 'string', default: '8' },
      'timeout-s': { type: 'string', default: '60' },
      insecure: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) return { help: true };
  if (values.learner === undefined) throw new Error('--learner HOST:PORT is required');
  const number = (flag, check) => {
    const value = Number(values[flag]);
    if (values[flag].trim() === '' || !check(value)) throw new Error(`--${flag}: bad value '${values[flag]}'`);
    return value;
  };
  // The level and the step limit follow a server session's config rules, word for word.
  const config = (flag, given) => {
    try {
      return configOf(given);
    } catch (err) {
      if (err instanceof SimulatorError) throw new Error(`--${flag}: ${err.message}`);
      throw err;
    }
  };
  config('level', { level: values.level });
  const { level, maxSteps } =
    values['max-episode-steps'] === undefined
      ? config('level', { level: values.level })
      : config('max-episode-steps', { level: values.level, max_episode_steps: values['max-episode-steps'] });
  const streams = number('streams', (v) => Number.isInteger(v) && v >= 1 && v <= MAX_STREAMS);
  let seed = null;
  if (values.seed !== undefined) {
    if (!/^\s*[+-]?\d+\s*$/.test(values.seed)) throw new Error(`--seed: '${values.seed}' is not an integer`);
    try {
      seedBits(values.seed.trim());
    } catch (err) {
      throw new Error(`--seed: '${values.seed}' is not an int64`);
    }
    seed = BigInt(values.seed.trim()).toString(); // as the wire's int64 arrives: a decimal string
    // Stream i plays seed + i: the last one's seed must be an int64 too (no wrapping).
    if (BigInt(seed) + BigInt(streams - 1) > INT64_MAX) {
      const last = streams - 1;
      throw new Error(`--seed: ${seed} + ${last} (the seed of stream ${last} of --streams ${streams}) is not an int64`);
    }
  }
  if ([...values.name].length > NAME_CHARS) throw new Error(`--name: longer than ${NAME_CHARS} characters`);
  return {
    help: false,
    learner: values.learner,
    host: splitAddress(values.learner, '--learner').host,
    level,
    maxSteps,
    seed,
    streams,
    games: values.games === undefined ? null : number('games', (v) => Number.isSafeInteger(v) && v >= 1),
    name: values.name,
    reconnect: values.reconnect,
    reconnectTries: number('reconnect-tries', (v) => Number.isInteger(v) && v >= 1 && v <= MAX_RECONNECT_TRIES),
    timeoutMs: Math.round(
      1000 * number('timeout-s', (v) => Number.isFinite(v) && Math.round(1000 * v) >= 1 && 1000 * v <= MAX_TIMER_MS),
    ),
    insecure: values.insecure,
  };
}

// ----- the loop ---------------------------------------------------------------------------

const print = (fd, line) => {
  try {
    fs.writeSync(fd, `${line}\n`); // synchronous: an exit right after cannot cut it
  } catch (err) {
    // the reader is gone: stopping cleanly matters more than the line
  }
};

const plural = (n, noun) => `${n} ${noun}${n === 1 ? '' : 's'}`;

/** How a stream ended: the exit code, the words for the last line, and whether a reconnect may help. */
const ending = (code, how, retry = false) => ({ code, how, retry });

/** The wait before reconnect number `n` in a row (1, 2, ...). */
const backoffMs = (n) => Math.min(BACKOFF_FIRST_MS * 2 ** (n - 1), BACKOFF_MAX_MS);

/** The seed of stream `index` (0, 1, ...): --seed + index, a decimal string, or null for random. */
const seedOf = (seed, index) => (seed === null ? null : (BigInt(seed) + BigInt(index)).toString());

/** How the lines of stream `index` begin: with one stream, as they always did. */
const labelOf = (streams, index) => (streams === 1 ? 'gridworld client' : `gridworld client stream ${index}`);

/**
 * Play one Act stream: open it, then one step per reply until the learner ends it, the
 * games are played, a signal comes or something goes wrong. `state` is the stream's own
 * (its games, its open ActStream, its reconnect wait); `control` is the run's (a signal).
 * @returns {Promise<{code: number, how: string, retry: boolean}>}
 */
async function playStream(Learner, options, session, state, control) {
  const stream = new ActStream(Learner, options.learner);
  state.stream = stream;
  let inEpisode = false; // an episode has begun on this stream (a step of it answered) and not ended
  const interrupted = () => (inEpisode ? ' (the episode in play was interrupted)' : '');

  /** Send `request` (unless a signal came) and wait for the answer. */
  const exchange = async (request) => {
    if (control.signal !== null) return { interrupted: true };
    stream.send(request);
    return stream.next(options.timeoutMs);
  };

  /** Whatever ended the wait, when it was not a reply. */
  const end = async (item) => {
    if (item.interrupted) {
      const how = `stopped by ${control.signal}${interrupted()}`;
      const status = await stream.close(CLOSE_GRACE_MS);
      if (control.forced) return ending(1, `${how}; a second signal cancelled the stream`);
      if (status === null) return ending(0, `${how}; the learner did not end the stream within 5 s, so it was cancelled`);
      return ending(0, `${how}; the stream was closed (the learner answered ${statusText(status)})`);
    }
    if (item.timeout) {
      stream.cancel();
      return ending(1, `no reply from the learner within ${options.timeoutMs / 1000} s; the stream was cancelled${interrupted()}`);
    }
    stream.release();
    const { status } = item;
    if (status.code === grpc.status.OK) return ending(0, `the learner ended the stream (${statusText(status)})${interrupted()}`);
    return ending(1, `the stream ended with ${statusText(status)}${interrupted()}`, status.code === grpc.status.UNAVAILABLE);
  };

  /** The learner broke the proto's order: nothing sensible can follow, so cancel. */
  const broken = (what) => {
    stream.cancel();
    return ending(1, `the learner broke the Act protocol: ${what}; the stream was cancelled${interrupted()}`);
  };

  try {
    let item = await exchange(ActStream.openMessage(specMessage(session.spec), options.name));
    if (!item.reply) return await end(item);
    if (item.reply.reply !== 'opened') return broken(`it answered \`open\` with \`${item.reply.reply}\`, not \`opened\``);
    const { opened } = item.reply;
    if (opened.protocol_version !== 1) {
      return broken(`it speaks Act protocol version ${opened.protocol_version}, this client ACT_PROTOCOL_VERSION_1`);
    }
    print(
      1,
      `${state.label} connected to ${options.learner}: agent ${opened.agent} of run ${quoted(opened.run_name)} ` +
        `(policy version ${opened.policy_version})`,
    );

    // An episode's first step: the observations alone (a new stream always starts one).
    let step = { observations: session.reset().observations };
    let episodeEnded = false;
    // One pass per step. Bounded: an episode ends within the spec's step limit (the game
    // times out), and games end with --games or with the stream, which the learner ends
    // once the run needs no more games from this agent.
    for (;;) {
      item = await exchange({ step });
      if (!item.reply) return await end(item);
      if (item.reply.reply !== 'actions') return broken(`it answered a \`step\` with \`${item.reply.reply}\`, not \`actions\``);
      const { actions } = item.reply;
      if (episodeEnded) {
        if (!actions.episode_over) return broken('the step that ended the episode was not answered with episode_over');
        if (Object.keys(actions.actions).length > 0) return broken('episode_over came with actions');
        inEpisode = false;
        state.games += 1;
        if (options.games !== null && state.games >= options.games) {
          const status = await stream.close(CLOSE_GRACE_MS);
          const how = `played the ${plural(options.games, 'game')} of --games and closed the stream`;
          if (status === null) return ending(0, `${how}; it was cancelled (no status from the learner within 5 s, or a signal)`);
          if (status.code === grpc.status.OK) return ending(0, `${how} (the learner answered OK)`);
          return ending(1, `${how}, but the learner answered ${statusText(status)}`);
        }
        step = { observations: session.reset().observations };
        episodeEnded = false;
        continue;
      }
      if (actions.episode_over) return broken('episode_over answered a step that did not end the episode');
      inEpisode = true;
      let result;
      try {
        result = session.step({ actions: actions.actions });
      } catch (err) {
        if (!(err instanceof SimulatorError)) throw err;
        stream.cancel();
        return ending(1, `the learner sent bad actions: ${printable(err.message)}; the stream was cancelled${interrupted()}`);
      }
      // The observations after the actions, with the actions' rewards and ending.
      step = result;
      episodeEnded = result.game_over !== 0 || result.time_out;
    }
  } catch (err) {
    stream.cancel(); // a bug: this stream ends here, and the other streams play on
    throw err;
  } finally {
    state.stream = null;
  }
}

/** A status as the last line shows it: its code's name, and its message if it says more. */
const statusText = (status) => {
  const details = status.details || '';
  const said = details !== '' && !(status.code === grpc.status.OK && details === 'OK'); // (grpc-js's OK says 'OK')
  return `${codeName(status.code)}${said ? `: ${printable(details)}` : ''}`;
};

/**
 * Play one of the --streams until the learner ends it, its --games are played, a signal
 * comes or an error; with --reconnect a stream that ends UNAVAILABLE is opened anew after
 * a backoff.
 * @returns {Promise<{code: number, how: string}>}
 */
async function run(Learner, options, state, control) {
  // One session for the whole of this stream's run, as a server session opened with its
  // seed: its first episode uses the seed, later ones (after a reconnect too) go on with
  // the random stream.
  const session = new Session('client', { level: options.level, maxSteps: options.maxSteps }, state.seed);
  let tries = 0; // reconnects in a row without a game played in between
  // Bounded: each pass either plays a game (bounded as in playStream) or counts a try.
  for (;;) {
    const gamesBefore = state.games;
    const outcome = await playStream(Learner, options, session, state, control);
    if (!(outcome.retry && options.reconnect) || control.signal !== null) return outcome;
    if (state.games > gamesBefore) tries = 0;
    tries += 1;
    if (tries > options.reconnectTries) {
      return ending(outcome.code, `${outcome.how}; gave up after ${options.reconnectTries} reconnects in a row`);
    }
    const waitMs = backoffMs(tries);
    print(2, `${state.label}: ${outcome.how}; reconnecting in ${waitMs / 1000} s (${tries} of ${options.reconnectTries})`);
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, waitMs);
      state.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    state.wake = null;
    if (control.signal !== null) return ending(0, `stopped by ${control.signal} while waiting to reconnect`);
  }
}

/** A stream's last line: its games and how it ended, on stdout when it ended cleanly. */
const printEnd = (state, { code, how }) =>
  print(code === 0 ? 1 : 2, `${state.label}: ${plural(state.games, 'game')} played; ${how}`);

/**
 * Play every stream at once; each ends on its own (one that fails leaves the others
 * playing). Resolves with the exit code: 0 only when every stream ended cleanly.
 */
async function runAll(options, states, control) {
  const { Learner } = loadLearner();
  const outcomes = await Promise.all(
    states.map(async (state) => {
      let outcome;
      try {
        outcome = await run(Learner, options, state, control);
      } catch (err) {
        outcome = ending(1, `failed: ${(err && err.stack) || err}`);
      }
      printEnd(state, outcome);
      return outcome;
    }),
  );
  const failed = states.filter((state, i) => outcomes[i].code !== 0).map((state) => state.index);
  if (states.length > 1) {
    const total = states.reduce((sum, state) => sum + state.games, 0);
    const perStream = states.map((state) => state.games).join(', ');
    const games = `${plural(total, 'game')} played on ${states.length} streams (per stream: ${perStream})`;
    const failures = `${failed.length === 1 ? 'stream' : 'streams'} ${failed.join(', ')} failed`;
    const how = failed.length === 0 ? 'every stream ended cleanly' : failures;
    print(failed.length === 0 ? 1 : 2, `gridworld client: ${games}; ${how}`);
  }
  return failed.length === 0 ? 0 : 1;
}

function main(argv) {
  let options;
  try {
    options = parseArguments(argv);
  } catch (err) {
    process.stderr.write(`${err.message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  refuseUntrusted(
    options.host,
    options.insecure,
    `refusing to connect to '${options.host}' without TLS (this client has none): ` +
      'use a loopback address, or pass --insecure if this network is trusted\n',
  );

  const control = { signal: null, forced: false };
  const states = Array.from({ length: options.streams }, (_, index) => ({
    index,
    label: labelOf(options.streams, index),
    seed: seedOf(options.seed, index),
    games: 0,
    stream: null, // the ActStream in play
    wake: null, // ends a reconnect's wait
  }));
  // A signal closes every stream cleanly (half-close, then the learner's status); a
  // second one cancels them at once.
  const stop = (signal) => {
    if (control.signal === null) control.signal = signal;
    else control.forced = true;
    for (const state of states) {
      if (state.stream !== null) state.stream.interrupt();
      if (state.wake !== null) state.wake();
    }
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  runAll(options, states, control).then(
    (code) => process.exit(code),
    (err) => {
      print(2, `gridworld client: 0 games played; failed: ${(err && err.stack) || err}`);
      process.exit(1);
    },
  );
}

if (require.main === module) main(process.argv.slice(2));

module.exports = { parseArguments, backoffMs, seedOf, USAGE, MAX_STREAMS };
