#!/usr/bin/env node
'use strict';
// The grid world as a FLARE simulator: flare.simulator.v1.Simulator over gRPC, plus the
// standard health and reflection services.
//
//   node simulators/gridworld/server.js [--address HOST:PORT] [--max-sessions N]
//        [--max-sessions-per-client N] [--idle-timeout S] [--keepalive-s S]
//        [--keepalive-timeout-s S] [--max-message-mb M] [--insecure]
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

const { isLoopback, refuseUntrusted, splitAddress } = require('./address');
const { toStatus, invalid, notFound, precondition, cancelled, quoted, SimulatorError } = require('./errors');
const { LOADER_OPTIONS, SIMULATOR_PROTO, loadProto } = require('./protos');
const { Registry, specMessage } = require('./sessions');
const { utf8Checker } = require('./wire');

const SERVICE_NAME = 'flare.simulator.v1.Simulator';
const { version: VERSION } = require('./package.json');
const PROTOCOL_VERSION_1 = 1;
const PACKAGE = SERVICE_NAME.slice(0, SERVICE_NAME.lastIndexOf('.'));
const SHUTDOWN_GRACE_MS = 5000; // in-flight calls get this long before they are cut
// Client pings more often than this are unwelcome (C-core's policy option; see keepalive()).
const MIN_CLIENT_PING_INTERVAL_MS = 10000;
const MAX_TIMER_MS = 2 ** 31 - 1; // Node fires a longer timer at once (and grpc-js would drop the connection)

const USAGE = `usage: node server.js [--address HOST:PORT] [--max-sessions N] [--max-sessions-per-client N]
                      [--idle-timeout S] [--keepalive-s S] [--keepalive-timeout-s S]
                      [--max-message-mb M] [--insecure]

  --address HOST:PORT          where to listen (default 127.0.0.1:50052; port 0 picks a free port)
  --max-sessions N             open sessions at once; one more is RESOURCE_EXHAUSTED (default 64)
  --max-sessions-per-client N  open sessions of one client host; one more is RESOURCE_EXHAUSTED
                               (default 0: no quota)
  --idle-timeout S             close sessions unused for S seconds; 0 never (default 300);
                               a Session stream whose session is reaped so ends CANCELLED
  --keepalive-s S              ping each connection every S seconds (default 60)
  --keepalive-timeout-s S      close a connection whose ping is unanswered for S seconds (default 20)
  --max-message-mb M           the largest message received or sent, in MiB (default 4)
  --insecure                   allow an address beyond loopback (this server has no TLS)`;

// ----- command line ------------------------------------------------------------------------

function parseArguments(argv) {
  const { values } = util.parseArgs({
    args: argv,
    options: {
      address: { type: 'string', default: '127.0.0.1:50052' },
      'max-sessions': { type: 'string', default: '64' },
      'max-sessions-per-client': { type: 'string', default: '0' },
      'idle-timeout': { type: 'string', default: '300' },
      'keepalive-s': { type: 'string', default: '60' },
      'keepalive-timeout-s': { type: 'string', default: '20' },
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
  // Seconds as whole milliseconds a timer can hold: at least 1 ms, at most about 24.8 days.
  const milliseconds = (flag) =>
    Math.round(1000 * number(flag, (v) => Number.isFinite(v) && Math.round(1000 * v) >= 1 && 1000 * v <= MAX_TIMER_MS));
  const address = values.address;
  return {
    help: values.help,
    address,
    host: splitAddress(address, '--address').host,
    maxSessions: number('max-sessions', (v) => Number.isInteger(v) && v >= 1),
    maxSessionsPerClient: number('max-sessions-per-client', (v) => Number.isInteger(v) && v >= 0),
    idleTimeoutS: number('idle-timeout', (v) => Number.isFinite(v) && v >= 0),
    keepaliveMs: milliseconds('keepalive-s'),
    keepaliveTimeoutMs: milliseconds('keepalive-timeout-s'),
    maxMessageBytes: Math.floor(number('max-message-mb', (v) => Number.isFinite(v) && v > 0) * 1024 * 1024),
    insecure: values.insecure,
  };
}

/**
 * The host of a call's peer, the client the per-client quota counts. grpc-js writes a TCP
 * peer as ADDRESS:PORT (an IPv6 address unbracketed, but always with its port); the port
 * goes, as each connection has its own, and an IPv4-mapped IPv6 address becomes its IPv4
 * one, so a host is one client on any listener.
 */
function peerHost(peer) {
  const bracketed = /^\[(.*)\](?::\d+)?$/.exec(peer);
  const host = bracketed ? bracketed[1] : peer.replace(/^(.*[.:].*):\d+$/, '$1');
  return host.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1');
}

// ----- proto ------------------------------------------------------------------------------

function loadProtos() {
  const simulator = loadProto(SIMULATOR_PROTO); // (checks tensors.js's DType numbers too)
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

const opened = (session) => ({ session_id: session.id, spec: specMessage(session.spec) });

// ----- requests that do not parse ---------------------------------------------------------
//
// grpc-js answers a request its deserializer throws on with INTERNAL, which says "the
// server is broken"; the contract's answer is INVALID_ARGUMENT, the client's fault. So the
// service is registered with deserializers that never throw: bytes that do not parse
// become a marker the handlers refuse with the right status. A string field that is not
// UTF-8 does not parse either (protobufjs lets it through; see wire.js).

/** What a request that did not parse becomes (one frozen marker per request type). */
class Unparseable {
  constructor(typeName) {
    this.typeName = typeName;
    Object.freeze(this);
  }
}

/** The Simulator service of `definition` with deserializers that return an Unparseable instead of throwing. */
function tolerantService(definition) {
  const utf8 = utf8Checker(definition, PACKAGE);
  const tolerant = {};
  for (const [name, method] of Object.entries(definition[SERVICE_NAME])) {
    const typeName = `${PACKAGE}.${method.requestType.type.name}`;
    const marker = new Unparseable(typeName);
    const deserialize = method.requestDeserialize;
    tolerant[name] = {
      ...method,
      requestDeserialize: (bytes) => {
        let request;
        try {
          request = deserialize(bytes);
        } catch (err) {
          return marker;
        }
        return utf8(typeName, bytes) ? request : marker;
      },
    };
  }
  return tolerant;
}

/** The request, or INVALID_ARGUMENT if it did not parse. */
function parsed(request) {
  if (request instanceof Unparseable) throw invalid(`the request could not be parsed as ${request.typeName}`);
  return request;
}

/** A unary handler from a function of the request (and call); any throw becomes the call's status. */
function unary(handle) {
  return (call, callback) => {
    let response;
    try {
      response = handle(parsed(call.request), call);
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

/** On a Session stream, a reset's or step's session_id is empty or the stream's own. */
function checkOwnSession(session, sessionId, which) {
  if (sessionId !== '' && sessionId !== undefined && sessionId !== session.id) {
    throw invalid(
      `SessionRequest.${which}.session_id ${quoted(sessionId)} names another session; ` +
        `leave it empty or give this stream's own (${session.id})`,
    );
  }
}

/**
 * Count a stream as open until it ends however it ends (the client's end, an error, a
 * cancellation), for GetServerInfo.
 */
function countStream(streams, call) {
  streams.open += 1;
  let counted = true;
  const release = () => {
    if (!counted) return;
    counted = false;
    streams.open -= 1;
  };
  for (const event of ['finish', 'close', 'error', 'cancelled']) call.on(event, release);
}

function simulatorHandlers(registry) {
  const streams = { open: 0 };
  return {
    // A farm client's view of the load; answered even at the session limit.
    GetServerInfo: unary(() => ({
      protocol_versions: [PROTOCOL_VERSION_1],
      server_version: `flare-gridworld ${VERSION}`,
      open_sessions: registry.size,
      max_sessions: registry.maxSessions,
      open_streams: streams.open,
      max_streams: 0, // (no stream limit of its own; the session limit bounds Session streams)
    })),

    OpenSession: unary((request, call) => opened(registry.open(request, peerHost(call.getPeer())))),

    CloseSession: unary((request) => {
      if (!registry.close(request.session_id)) throw notFound(`no session ${quoted(request.session_id)}`);
      return {};
    }),

    GetSpec: unary((request) => ({ spec: specMessage(registry.get(request.session_id).spec) })),

    Reset: unary((request) => registry.get(request.session_id).reset(request)),

    Step: unary((request) => registry.get(request.session_id).step(request)),

    StepMany: unary((request) => registry.stepMany(request)),

    // One answer per request, in order; an error ends the stream with its status. The
    // sessions are the caller's, so they stay open when the stream ends.
    StepManyStream(call) {
      countStream(streams, call);
      let finished = false;
      call.on('data', (request) => {
        if (finished) return;
        let response;
        try {
          response = registry.stepMany(parsed(request));
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
    // closed when the stream ends, is cancelled, or fails. The idle reaper may close it
    // first (a paused client): the stream then ends CANCELLED, as the Python server's does.
    Session(call) {
      countStream(streams, call);
      let session = null;
      let finished = false;
      const finish = () => {
        finished = true;
        if (session !== null) registry.close(session.id, 'its Session stream ended');
        session = null;
      };
      const reaped = (id) => () => {
        if (finished) return;
        finish();
        const idle = `${registry.idleTimeoutS}s`;
        call.emit('error', statusOf(cancelled(`session ${id} was closed after being idle for over ${idle}`)));
      };
      const answer = (request) => {
        const which = request.request;
        if (which === 'open') {
          if (session !== null) throw precondition('this stream already has a session');
          session = registry.open(request.open, peerHost(call.getPeer()));
          session.onReaped = reaped(session.id);
          return { open: opened(session) };
        }
        if (session === null) throw precondition('the first message of a stream must be `open`');
        if (which === 'step') {
          checkOwnSession(session, request.step.session_id, 'step');
          return { step: session.step(request.step) };
        }
        if (which === 'reset') {
          checkOwnSession(session, request.reset.session_id, 'reset');
          return { reset: session.reset(request.reset) };
        }
        throw invalid('empty SessionRequest');
      };
      call.on('data', (request) => {
        if (finished) return;
        let response;
        try {
          response = answer(parsed(request));
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

/**
 * The server's keepalive: it pings every connection, so one whose client paused or vanished
 * (no FIN ever came) is closed and its streams end, freeing their sessions before the idle
 * reaper would. grpc-js's server pings whether or not calls are open and honours only the
 * first two options; the last two are C-core's names for the same policy as the Python
 * server's (pings without calls allowed; client pings at most every 10 s), set so both
 * servers read alike. grpc-js itself does not police client pings.
 */
function keepalive({ keepaliveMs, keepaliveTimeoutMs }) {
  return {
    'grpc.keepalive_time_ms': keepaliveMs,
    'grpc.keepalive_timeout_ms': keepaliveTimeoutMs,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': MIN_CLIENT_PING_INTERVAL_MS,
  };
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
    `refusing to serve on '${options.host}' without TLS (this simulator has none): ` +
      'bind 127.0.0.1, or pass --insecure if this network is trusted\n',
  );

  const protos = loadProtos();
  const registry = new Registry({
    maxSessions: options.maxSessions,
    maxSessionsPerClient: options.maxSessionsPerClient,
    idleTimeoutS: options.idleTimeoutS,
  });
  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxMessageBytes,
    'grpc.max_send_message_length': options.maxMessageBytes,
    ...keepalive(options),
  });
  server.addService(tolerantService(protos.simulator), simulatorHandlers(registry));
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

module.exports = { parseArguments, isLoopback, peerHost, keepalive, tolerantService, specMessage, loadProtos };
