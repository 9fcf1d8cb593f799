'use strict';
// Shared by the end-to-end tests: start the server, call it, drive a Session stream, and
// check that a well-behaved session still works after whatever a test did to the server.
// (No tests here: node --test runs this file too, and it passes with none.)

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');
const readline = require('node:readline');

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const { decode, encode } = require('../tensors');

const SERVER = path.resolve(__dirname, '../server.js');
const definition = protoLoader.loadSync('flare/simulator/v1/simulator.proto', {
  keepCase: true,
  longs: String,
  enums: Number,
  defaults: true,
  oneofs: true,
  includeDirs: [path.resolve(__dirname, '../../../protos')],
});
const SIMULATOR = definition['flare.simulator.v1.Simulator'];
const Simulator = grpc.makeGenericClientConstructor(SIMULATOR);

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

const WORK_LIMIT_MS = 25000; // under the tests' own timeout, so the cleanup below still runs

/**
 * A started server and a client of it, for `work`; both are stopped afterwards, also when
 * `work` hangs on an answer that never comes (the server's exit then ends its calls).
 */
async function withServer(args, work) {
  const server = await start(args);
  const client = new Simulator(server.address, grpc.credentials.createInsecure());
  let timer;
  const expired = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no result within ${WORK_LIMIT_MS} ms`)), WORK_LIMIT_MS);
  });
  try {
    await Promise.race([work(client, server), expired]);
  } finally {
    clearTimeout(timer);
    client.close();
    server.child.kill('SIGTERM');
  }
}

const call = (client, method, request) =>
  new Promise((resolve, reject) => client[method](request, (err, response) => (err ? reject(err) : resolve(response))));

/** A rejection check: the exact status code, and the details matching `pattern`. */
const status = (code, pattern = /./) => (err) => {
  assert.equal(err.code, code, `${grpc.status[err.code]}: ${err.details}`);
  assert.match(err.details, pattern);
  return true;
};

const action = (...values) => ({ action: encode('int64', [values.length], BigInt64Array.from(values.map(BigInt))) });
const batch = (...values) => ({ action: encode('int64', [values.length, 1], BigInt64Array.from(values.map(BigInt))) });

/**
 * Send `messages` on a new stream of `method` (then half-close); resolves with the answers
 * and the error that ended the stream (null when it ended OK).
 */
function stream(client, method, messages, { end = true } = {}) {
  const call = client[method]();
  const answers = [];
  const done = new Promise((resolve) => {
    call.on('data', (response) => answers.push(response));
    call.on('error', (err) => resolve({ answers, err }));
    call.on('end', () => resolve({ answers, err: null }));
  });
  for (const message of messages) call.write(message);
  if (end) call.end();
  return { call, done };
}

/** The image of every observation in a reset and `steps` (hex), for comparing two sessions. */
async function play(client, sessionId, steps) {
  const frames = [];
  const reset = await call(client, 'Reset', { session_id: sessionId });
  frames.push(reset.observations.image.data.toString('hex'));
  for (const move of steps) {
    const step = await call(client, 'Step', { session_id: sessionId, actions: action(move) });
    frames.push(step.observations.image.data.toString('hex'));
    if (step.game_over !== 0 || step.time_out) {
      frames.push((await call(client, 'Reset', { session_id: sessionId })).observations.image.data.toString('hex'));
    }
  }
  return frames;
}

/** A fresh session opened, reset, stepped and closed, unary and on a Session stream: the server still serves. */
async function assertServes(client) {
  const opened = await call(client, 'OpenSession', { protocol_version: 1, config: { level: '1' }, seed: '3' });
  await call(client, 'Reset', { session_id: opened.session_id });
  const step = await call(client, 'Step', { session_id: opened.session_id, actions: action(1) });
  assert.equal(decode(step.rewards.reward).values.length, 1);
  await call(client, 'CloseSession', { session_id: opened.session_id });
  const { answers, err } = await stream(client, 'Session', [
    { open: { protocol_version: 1 } },
    { reset: {} },
    { step: { actions: action(2) } },
  ]).done;
  assert.equal(err, null);
  assert.deepEqual(
    answers.map((answer) => answer.response),
    ['open', 'reset', 'step'],
  );
}

module.exports = { definition, SIMULATOR, Simulator, start, withServer, call, status, action, batch, stream, play, assertServes };
