'use strict';
// One Act stream to a FLARE learner (flare.learner.v1.Learner.Act), as the client mode
// plays it: the proto's order of messages (`open` first, then one `step` per reply), a
// wait for each reply bounded in time, and the status the stream ends with. The game
// loop itself is client.js's.

const grpc = require('@grpc/grpc-js');

const { capped } = require('./errors');
const { LEARNER_PROTO, loadProto } = require('./protos');

const SERVICE_NAME = 'flare.learner.v1.Learner';
const ACT_PROTOCOL_VERSION_1 = 1;

/** The Learner service of the repository's learner.proto, and a client constructor for it. */
function loadLearner() {
  const definition = loadProto(LEARNER_PROTO);
  const service = definition[SERVICE_NAME];
  if (!service || !service.Act || !service.Act.requestStream || !service.Act.responseStream) {
    throw new Error(`${LEARNER_PROTO}: ${SERVICE_NAME} has no bidirectional Act rpc`);
  }
  const version = definition['flare.learner.v1.ActProtocolVersion'].type.value.find(
    (value) => value.name === 'ACT_PROTOCOL_VERSION_1',
  );
  if (!version || version.number !== ACT_PROTOCOL_VERSION_1) {
    throw new Error(`${LEARNER_PROTO}: ACT_PROTOCOL_VERSION_1 is not ${ACT_PROTOCOL_VERSION_1}`);
  }
  return { definition, Learner: grpc.makeGenericClientConstructor(service) };
}

/** A status code's name, e.g. INVALID_ARGUMENT (the number for a code grpc-js does not know). */
function codeName(code) {
  return typeof grpc.status[code] === 'string' ? grpc.status[code] : `code ${code}`;
}

/**
 * A learner's text (a status message, a run name) fit for one line of a terminal: capped
 * at 1,024 characters, its control and format characters escaped, so a learner cannot
 * forge lines or move the cursor.
 */
function printable(text) {
  return capped(String(text)).replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, (char) => {
    const code = char.codePointAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/**
 * The replies of one stream, read one at a time. `next` resolves with one of
 * {reply}, {status} (the stream ended: grpc-js's status object, code 0 for OK),
 * {timeout: true} or {interrupted: true} (see interrupt()).
 */
class Replies {
  constructor(call) {
    this.items = [];
    this.waiter = null;
    this.status = null;
    call.on('data', (reply) => this._push({ reply }));
    call.on('error', () => {}); // the 'status' event carries the same status
    call.on('status', (status) => {
      // After any reply grpc-js still delivers on a later tick: a reply is never lost
      // behind the status that followed it.
      setImmediate(() => {
        this.status = status;
        this._push({ status });
      });
    });
  }

  _push(item) {
    if (this.waiter !== null) {
      const { resolve, timer } = this.waiter;
      this.waiter = null;
      clearTimeout(timer);
      resolve(item);
    } else {
      this.items.push(item);
    }
  }

  /** The next reply or the end, waiting at most `timeoutMs`. */
  next(timeoutMs) {
    if (this.items.length > 0) {
      const item = this.items.shift();
      if (item.status) this.items.unshift(item); // the end stays the end
      return Promise.resolve(item);
    }
    if (this.waiter !== null) throw new Error('Replies.next: already waiting');
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        resolve({ timeout: true });
      }, timeoutMs);
      this.waiter = { resolve, timer };
    });
  }

  /** Wake the reader now (a signal): its pending next() resolves with {interrupted: true}. */
  interrupt() {
    if (this.waiter === null) return;
    const { resolve, timer } = this.waiter;
    this.waiter = null;
    clearTimeout(timer);
    resolve({ interrupted: true });
  }
}

/**
 * One Act stream on its own channel (so a reconnect never waits out an old channel's
 * backoff). Writes follow the proto's alternation: the caller sends a message only once
 * the reply to the one before has come.
 */
class ActStream {
  /**
   * @param {Function} Learner the client constructor of loadLearner()
   * @param {string} address HOST:PORT
   * @param {object} [channelOptions] grpc-js channel options
   */
  constructor(Learner, address, channelOptions = {}) {
    this.client = new Learner(address, grpc.credentials.createInsecure(), channelOptions);
    this.call = this.client.Act();
    this.replies = new Replies(this.call);
    this.halfClosed = false;
  }

  /** The ActOpen message for an EnvSpec message and a name ('' sends no config key). */
  static openMessage(spec, name) {
    return { open: { protocol_version: ACT_PROTOCOL_VERSION_1, spec, config: name === '' ? {} : { name } } };
  }

  /** Send one request; false once the stream has ended (or was half-closed). */
  send(request) {
    if (this.halfClosed || this.replies.status !== null) return false;
    this.call.write(request);
    return true;
  }

  next(timeoutMs) {
    return this.replies.next(timeoutMs);
  }

  interrupt() {
    this.replies.interrupt();
  }

  /**
   * End the stream from this side: half-close, and wait up to `graceMs` for the
   * learner's status (replies still on their way are dropped); past it, or when
   * interrupted again, cancel. Resolves with the status, or null when it was cancelled.
   */
  async close(graceMs) {
    if (!this.halfClosed && this.replies.status === null) {
      this.halfClosed = true;
      this.call.end();
    }
    const deadline = Date.now() + graceMs;
    // Bounded by the deadline: every pass waits, and the wait shrinks to nothing.
    for (;;) {
      const left = deadline - Date.now();
      const item = left > 0 ? await this.replies.next(left) : { timeout: true };
      if (item.status) return item.status;
      if (item.timeout || item.interrupted) {
        this.cancel();
        return null;
      }
    }
  }

  /** Cancel the stream at once (an episode in play is interrupted) and close the channel. */
  cancel() {
    this.call.cancel();
    this.client.close();
  }

  /** Release the channel of a stream that has ended. */
  release() {
    this.client.close();
  }
}

module.exports = { ActStream, Replies, loadLearner, codeName, printable, ACT_PROTOCOL_VERSION_1, SERVICE_NAME };
