'use strict';
// Sessions: one grid world each, plus the episode rules of the contract (reset before
// step, no step after the episode ended), the session limit, the idle timeout, and
// StepMany's batching. Plain objects in and out; server.js only does the gRPC plumbing.
//
// Node runs one call at a time, so a check made before stepping still holds while
// stepping: StepMany checks every row first and then steps, and a bad request never
// leaves some sessions stepped and others not.

const crypto = require('crypto');

const { SpecChecks } = require('./checks');
const { invalid, notFound, precondition, exhausted, internal, SimulatorError } = require('./errors');
const { GridWorld, LEVELS, describe } = require('./game');
const { Random } = require('./random');
const { NUMERIC, dtypeOf, encode, product } = require('./tensors');

const PROTOCOL_VERSION_1 = 1;
const CONFIG_KEYS = ['level'];
const DEFAULT_LEVEL = '1';

// One spec and one set of checks per level, shared by its sessions.
const SPECS = new Map();
function specOf(level) {
  if (!SPECS.has(level)) {
    const spec = describe(level);
    SPECS.set(level, { spec, checks: new SpecChecks(spec) });
  }
  return SPECS.get(level);
}

/** The level a config asks for; a key or value this simulator does not know is INVALID_ARGUMENT. */
function levelOf(config) {
  for (const key of Object.keys(config || {})) {
    if (!CONFIG_KEYS.includes(key)) {
      throw invalid(`config key '${key}' is unknown; this simulator takes only 'level' ('1', '2' or '3')`);
    }
  }
  const level = config && config.level !== undefined ? config.level : DEFAULT_LEVEL;
  if (!Object.prototype.hasOwnProperty.call(LEVELS, level)) {
    throw invalid(`config 'level': '${level}' is not one of '1', '2', '3'`);
  }
  return level;
}

/** Observations by name as wire tensors (`rows` > 0: that many instances stacked). */
function observationTensors(spec, observations, rows = 0) {
  const out = {};
  for (const { name, dtype, shape } of spec.observations) {
    out[name] = encode(dtype, rows ? [rows, ...shape] : shape, observations[name]);
  }
  return out;
}

class Session {
  constructor(id, level, seed) {
    this.id = id;
    this.level = level;
    ({ spec: this.spec, checks: this.checks } = specOf(level));
    // One random stream for the session: the first reset uses the seed, later ones go on.
    this.game = new GridWorld(level, new Random(seed));
    this.lastUsed = Date.now();
    this.closed = false;
  }

  /** Mark the session used now; a closed one (e.g. reaped while idle) is NOT_FOUND. */
  touch() {
    if (this.closed) throw notFound(`session ${this.id} was closed (idle past the timeout)`);
    this.lastUsed = Date.now();
  }

  /** Start an episode; its first observations (typed arrays by name). */
  resetArrays() {
    this.touch();
    try {
      return this.game.reset();
    } catch (err) {
      this.game.running = false;
      throw internal(`the grid world's reset raised ${err.name}: ${err.message}`);
    }
  }

  reset() {
    return { observations: observationTensors(this.spec, this.resetArrays()) };
  }

  /** FAILED_PRECONDITION unless an episode is running (checked before any step). */
  checkRunning() {
    this.touch();
    if (!this.game.running) {
      throw precondition(
        `session ${this.id}: step before reset, or after the episode ended ` +
          '(game over or time-out); call Reset first',
      );
    }
  }

  /** One (repeated) step with an already-checked action. */
  stepArrays(action, actrep) {
    this.checkRunning();
    try {
      return this.game.step(action, actrep || 1);
    } catch (err) {
      this.game.running = false;
      throw internal(`the grid world's step raised ${err.name}: ${err.message}`);
    }
  }

  /** A Step request's answer. */
  step(request) {
    const actions = this.checks.decodeActions(request.actions);
    const actrep = checkActrep(request.actrep);
    const result = this.stepArrays(Number(actions.action[0]), actrep);
    return {
      observations: observationTensors(this.spec, this.game.observe()),
      rewards: { reward: encode('float32', [1], Float32Array.of(result.reward)) },
      game_over: result.gameOver,
      time_out: result.timeOut,
    };
  }

  close() {
    this.closed = true;
    this.game.running = false;
  }
}

function checkActrep(actrep) {
  const value = actrep || 0;
  if (value < 0) throw invalid(`actrep must be >= 0 (0 means 1), got ${value}`);
  return value;
}

class Registry {
  /** @param {{maxSessions: number, idleTimeoutS: number}} settings */
  constructor({ maxSessions = 64, idleTimeoutS = 300 } = {}) {
    this.maxSessions = maxSessions;
    this.idleTimeoutS = idleTimeoutS;
    this.sessions = new Map();
  }

  get size() {
    return this.sessions.size;
  }

  /** A new session for an OpenSessionRequest. */
  open(request) {
    if (request.protocol_version !== PROTOCOL_VERSION_1) {
      throw precondition(
        `protocol_version ${request.protocol_version} is not supported; ` +
          `this server speaks ${PROTOCOL_VERSION_1} (PROTOCOL_VERSION_1)`,
      );
    }
    if (this.sessions.size >= this.maxSessions) {
      throw exhausted(
        `this server already hosts its maximum of ${this.maxSessions} sessions; ` +
          'close one or use another server',
      );
    }
    const level = levelOf(request.config);
    // `seed` is proto3 `optional`: present (even 0) only when the client set it.
    const seed = request.seed === undefined || request.seed === null ? null : request.seed;
    const session = new Session(crypto.randomUUID().replace(/-/g, ''), level, seed);
    this.sessions.set(session.id, session);
    return session;
  }

  get(sessionId) {
    const session = this.sessions.get(sessionId);
    if (session === undefined) throw notFound(`no session '${sessionId}'`);
    return session;
  }

  /** Close a session; false when there is none of that id. */
  close(sessionId) {
    const session = this.sessions.get(sessionId);
    if (session === undefined) return false;
    this.sessions.delete(sessionId);
    session.close();
    return true;
  }

  closeAll() {
    for (const id of [...this.sessions.keys()]) this.close(id);
  }

  /** Close sessions unused for longer than the idle timeout; their ids. */
  reapIdle(now = Date.now()) {
    if (!(this.idleTimeoutS > 0)) return [];
    const stale = [...this.sessions.values()]
      .filter((session) => now - session.lastUsed > this.idleTimeoutS * 1000)
      .map((session) => session.id);
    for (const id of stale) this.close(id);
    return stale;
  }

  /** A StepMany request's answer: every check first, then every row stepped. */
  stepMany(request) {
    const ids = request.session_ids || [];
    if (ids.length === 0) throw invalid('StepMany: session_ids is empty');
    if (new Set(ids).size !== ids.length) throw invalid('StepMany: each session may appear once per call');
    const sessions = ids.map((id) => this.get(id)); // every NOT_FOUND before any step
    sessions.forEach((session, i) => {
      if (session.level !== sessions[0].level) {
        throw invalid(`StepMany: session_ids[${i}] has another spec than session_ids[0]`);
      }
    });
    const n = sessions.length;
    const { spec, checks } = sessions[0];
    const actions = checks.decodeActions(request.actions, n).action;
    const actrep = checkActrep(request.actrep);
    sessions.forEach((session, i) => onRow(i, () => session.checkRunning()));

    const batch = {};
    for (const { name, shape } of spec.observations) batch[name] = newRows(spec, name, n, shape);
    const rewards = new Float32Array(n);
    const gameOver = new Int32Array(n);
    const timeOut = new Uint8Array(n);
    const resetRows = [];
    const finals = [];
    sessions.forEach((session, i) => {
      onRow(i, () => {
        const result = session.stepArrays(Number(actions[i]), actrep);
        let observations = session.game.observe();
        if (request.auto_reset && (result.gameOver !== 0 || result.timeOut)) {
          resetRows.push(i);
          finals.push(observations);
          observations = session.resetArrays();
        }
        for (const name of Object.keys(batch)) {
          const row = observations[name];
          batch[name].set(row, i * row.length);
        }
        rewards[i] = result.reward;
        gameOver[i] = result.gameOver;
        timeOut[i] = result.timeOut ? 1 : 0;
      });
    });

    const response = {
      observations: observationTensors(spec, batch, n),
      rewards: { reward: encode('float32', [n, 1], rewards) },
      game_over: encode('int32', [n], gameOver),
      time_out: encode('bool', [n], timeOut),
      reset_rows: resetRows,
      final_observations: {},
    };
    if (finals.length) {
      const stacked = {};
      for (const { name, shape } of spec.observations) {
        stacked[name] = newRows(spec, name, finals.length, shape);
        finals.forEach((final, j) => stacked[name].set(final[name], j * final[name].length));
      }
      response.final_observations = observationTensors(spec, stacked, finals.length);
    }
    return response;
  }
}

/** A typed array for `rows` instances of one observation (row i at i * its size). */
function newRows(spec, name, rows, shape) {
  const { dtype } = spec.observations.find((o) => o.name === name);
  return new NUMERIC[dtypeOf(dtype)].Array(rows * product(shape));
}

/** Run one StepMany row's work; its errors say which row. */
function onRow(i, work) {
  try {
    work();
  } catch (err) {
    if (err instanceof SimulatorError) throw err.prefixed(`session_ids[${i}]: `);
    throw err;
  }
}

module.exports = { Registry, Session, levelOf, specOf, observationTensors, PROTOCOL_VERSION_1 };
