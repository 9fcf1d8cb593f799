#!/usr/bin/env node
'use strict';
// The grid world as a FLARE simulator: flare.simulator.v1.Simulator over gRPC, plus the
// standard health and reflection services.
//
//   node simulators/gridworld/server.js [--address HOST:PORT] [--max-sessions N]
//        [--idle-timeout S] [--max-message-mb M] [--insecure]
//
// The proto is loaded at run time from the repository's protos/ directory (never a
// copy), so this server always speaks the contract checked into the repository.

const fs = require('fs');
const path = require('path');
const util = require('util');

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { ReflectionService } = require('@grpc/reflection');
const { HealthImplementation, protoPath: HEALTH_PROTO } = require('grpc-health-check');

const { toStatus, invalid, notFound, precondition, SimulatorError } = require('./errors');
const { Registry } = require('./sessions');
const { DType, dtypeOf } = require('./tensors');

const PROTO_ROOT = path.resolve(__dirname, '../../protos');
const PROTO_FILE = 'flare/simulator/v1/simulator.proto';
const SERVICE_NAME = 'flare.simulator.v1.Simulator';
// int64 as strings: a seed may use all 64 bits, which a JS number cannot hold.
const LOADER_OPTIONS = { keepCase: true, longs: String, enums: Number, defaults: true, oneofs: true };
const SHUTDOWN_GRACE_MS = 5000; // in-flight calls get this long before they are cut

const USAGE = `usage: node server.js [--address HOST:PORT] [--max-sessions N] [--idle-timeout S]
                      [--max-message-mb M] [--insecure]

  --address HOST:PORT   where to listen (default 127.0.0.1:50052; port 0 picks a free port)
  --max-sessions N      open sessions at once; one more is RESOURCE_EXHAUSTED (default 64)
  --idle-timeout S      close sessions unused for S seconds; 0 never (default 300)
  --max-message-mb M    the largest message received or sent, in MiB (default 4)
  --insecure            allow an address beyond loopback (this server has no TLS)`;

// ----- command line ------------------------------------------------------------------------

function parseArguments(argv) {
  const { values } = util.parseArgs({
    args: argv,
    options: {
      address: { type: 'string', default: '127.0.0.1:50052' },
      'max-sessions': { type: 'string', default: '64' },
      'idle-timeout': { type: 'string', default: '300' },
      'max-message-mb': { type: 'string', default: '4' },
      insecure: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  const number = (flag, check) => {
    const value = Number(values[flag]);
    if (values[flag].trim() === '' || !check(value)) throw new Error(`--${flag}: bad value '${values[flag]}'`);
    return value;
  };
  const address = values.address;
  const colon = address.lastIndexOf(':');
  if (colon <= 0 || !/^\d+$/.test(address.slice(colon + 1))) {
    throw new Error(`--address: '${address}' is not HOST:PORT`);
  }
  return {
    help: values.help,
    address,
    host: address.slice(0, colon),
    maxSessions: number('max-sessions', (v) => Number.isInteger(v) && v >= 1),
    idleTimeoutS: number('idle-timeout', (v) => Number.isFinite(v) && v >= 0),
    maxMessageBytes: Math.floor(number('max-message-mb', (v) => Number.isFinite(v) && v > 0) * 1024 * 1024),
    insecure: values.insecure,
  };
}

/** Whether a host is this machine only (no TLS here, so anything else needs --insecure). */
function isLoopback(host) {
  const bare = host.replace(/^\[|\]$/g, '');
  return bare === 'localhost' || bare === '::1' || /^127\.\d+\.\d+\.\d+$/.test(bare);
}

// ----- proto ------------------------------------------------------------------------------

function loadProtos() {
  const simulator = protoLoader.loadSync(PROTO_FILE, { ...LOADER_OPTIONS, includeDirs: [PROTO_ROOT] });
  // tensors.js hard-codes the DType numbers to stay gRPC-free: make sure they still agree.
  for (const { name, number } of simulator['flare.simulator.v1.DType'].type.value) {
    if (DType[name.replace(/^DTYPE_/, '')] !== number) {
      throw new Error(`${PROTO_FILE}: ${name} = ${number}, but tensors.js says otherwise`);
    }
  }
  const health = protoLoader.loadSync('health/v1/health.proto', {
    ...LOADER_OPTIONS,
    includeDirs: [path.resolve(path.dirname(HEALTH_PROTO), '../..')],
  });
  return { simulator, health };
}

// ----- the service ------------------------------------------------------------------------

function log(message) {
  process.stderr.write(`gridworld: ${message}\n`);
}

/** The status of a failed call; a bug is logged (it costs one call, never the server). */
function statusOf(err) {
  if (!(err instanceof SimulatorError)) log(`unexpected error: ${(err && err.stack) || err}`);
  return toStatus(err);
}

/** The EnvSpec message of a session's spec (kind is already the oneof's field). */
function specMessage(spec) {
  const tensorSpec = (s) => ({ name: s.name, dtype: dtypeOf(s.dtype), shape: s.shape, ...(s.kind || {}) });
  return {
    observations: spec.observations.map(tensorSpec),
    actions: spec.actions.map(tensorSpec),
    reward_names: spec.reward_names,
    max_episode_steps: spec.max_episode_steps,
  };
}

const opened = (session) => ({ session_id: session.id, spec: specMessage(session.spec) });

/** A unary handler from a function of the request; any throw becomes the call's status. */
function unary(handle) {
  return (call, callback) => {
    let response;
    try {
      response = handle(call.request);
    } catch (err) {
      callback(statusOf(err));
      return;
    }
    callback(null, response);
  };
}

/** Write one stream response, pausing the reads while the client is behind. */
function send(call, message) {
  if (!call.write(message)) {
    call.pause();
    call.once('drain', () => call.resume());
  }
}

function simulatorHandlers(registry) {
  return {
    OpenSession: unary((request) => opened(registry.open(request))),

    CloseSession: unary((request) => {
      if (!registry.close(request.session_id)) throw notFound(`no session '${request.session_id}'`);
      return {};
    }),

    GetSpec: unary((request) => ({ spec: specMessage(registry.get(request.session_id).spec) })),

    Reset: unary((request) => registry.get(request.session_id).reset()),

    Step: unary((request) => registry.get(request.session_id).step(request)),

    StepMany: unary((request) => registry.stepMany(request)),

    // One answer per request, in order; an error ends the stream with its status. The
    // sessions are the caller's, so they stay open when the stream ends.
    StepManyStream(call) {
      let finished = false;
      call.on('data', (request) => {
        if (finished) return;
        let response;
        try {
          response = registry.stepMany(request);
        } catch (err) {
          finished = true;
          call.emit('error', statusOf(err));
          return;
        }
        send(call, response);
      });
      call.on('end', () => {
        if (finished) return;
        finished = true;
        call.end();
      });
      call.on('cancelled', () => {
        finished = true;
      });
    },

    // The stream owns one session: `open` first, then resets and steps; the session is
    // closed when the stream ends, is cancelled, or fails.
    Session(call) {
      let session = null;
      let finished = false;
      const finish = () => {
        finished = true;
        if (session !== null) registry.close(session.id);
        session = null;
      };
      const answer = (request) => {
        const which = request.request;
        if (which === 'open') {
          if (session !== null) throw precondition('this stream already has a session');
          session = registry.open(request.open);
          return { open: opened(session) };
        }
        if (session === null) throw precondition('the first message of a stream must be `open`');
        if (which === 'step') return { step: session.step(request.step) };
        if (which === 'reset') return { reset: session.reset() };
        throw invalid('empty SessionRequest');
      };
      call.on('data', (request) => {
        if (finished) return;
        let response;
        try {
          response = answer(request);
        } catch (err) {
          finish();
          call.emit('error', statusOf(err));
          return;
        }
        send(call, response);
      });
      call.on('end', () => {
        if (finished) return;
        finish();
        call.end();
      });
      call.on('cancelled', finish);
    },
  };
}

// ----- start and stop ---------------------------------------------------------------------

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
  if (!isLoopback(options.host) && !options.insecure) {
    process.stderr.write(
      `refusing to serve on '${options.host}' without TLS (this simulator has none): ` +
        'bind 127.0.0.1, or pass --insecure if this network is trusted\n',
    );
    process.exit(2);
  }

  const protos = loadProtos();
  const registry = new Registry({ maxSessions: options.maxSessions, idleTimeoutS: options.idleTimeoutS });
  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxMessageBytes,
    'grpc.max_send_message_length': options.maxMessageBytes,
  });
  server.addService(protos.simulator[SERVICE_NAME], simulatorHandlers(registry));
  const health = new HealthImplementation({ '': 'NOT_SERVING', [SERVICE_NAME]: 'NOT_SERVING' });
  health.addToServer(server);
  new ReflectionService({ ...protos.simulator, ...protos.health }).addToServer(server);

  // The idle reaper: a vanished client must not hold a session slot forever.
  let reaper = null;
  if (options.idleTimeoutS > 0) {
    const everyMs = 1000 * Math.min(Math.max(options.idleTimeoutS / 4, 0.05), 5);
    reaper = setInterval(() => {
      for (const id of registry.reapIdle()) log(`closed session ${id}: idle for over ${options.idleTimeoutS}s`);
    }, everyMs);
  }

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    health.setStatus('', 'NOT_SERVING'); // load balancers stop sending work first
    health.setStatus(SERVICE_NAME, 'NOT_SERVING');
    if (reaper !== null) clearInterval(reaper);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(force);
      registry.closeAll();
      try {
        fs.writeSync(1, 'gridworld simulator stopped\n'); // synchronous: the exit cannot cut it
      } catch (err) {
        // stdout is gone (its reader exited): stopping cleanly matters more than the line
      }
      process.exit(0);
    };
    // Open streams (a Session, a health Watch) would hold tryShutdown forever: cut them
    // after the grace period.
    const force = setTimeout(() => {
      server.forceShutdown();
      finish();
    }, SHUTDOWN_GRACE_MS);
    server.tryShutdown(finish);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // A last line of defence: a bug must cost one call, never the server.
  process.on('uncaughtException', (err) => log(`uncaught exception: ${(err && err.stack) || err}`));

  server.bindAsync(options.address, grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) {
      process.stderr.write(`could not bind ${options.address}: ${err.message}\n`);
      process.exit(1);
    }
    health.setStatus('', 'SERVING');
    health.setStatus(SERVICE_NAME, 'SERVING');
    // Synchronous, so the line is out (flushed) before any caller waits on it.
    fs.writeSync(1, `gridworld simulator listening on ${options.host}:${port}\n`);
  });
}

if (require.main === module) main(process.argv.slice(2));

module.exports = { parseArguments, isLoopback, specMessage, loadProtos };
