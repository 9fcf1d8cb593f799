'use strict';
// Sessions: one grid world each, plus the episode rules of the contract (reset before
// step, no step after the episode ended), the session limit and the per-client quota,
// the idle timeout, and StepMany's batching. Plain objects in and out; server.js only
// does the gRPC plumbing.
//
// Node runs one call at a time, so a check made before stepping still holds while
// stepping: StepMany checks every row first and then steps, and a bad request never
// leaves some sessions stepped and others not.

const crypto = require('crypto');

const { SpecChecks } = require('./checks');
const { invalid, notFound, precondition, exhausted, internal, quoted, SimulatorError } = require('./errors');
const { GridWorld, LEVELS, describe, levelStepLimit } = require('./game');
const { Random } = require('./random');
const { NUMERIC, dtypeOf, encode, product } = require('./tensors');

const PROTOCOL_VERSION_1 = 1;
const CONFIG_KEYS = ['level', 'max_episode_steps'];
const DEFAULT_LEVEL = '1';
const MAX_STEPS_CHARS = 20; // an int64's digits and sign: a longer value is not a step count

// One spec and one set of checks per (level, step limit), shared by its sessions; at most
// 4 * G specs per level, so the cache stays small. StepMany compares specs by identity.
const SPECS = new Map();
function specOf(level, maxSteps = levelStepLimit(level)) {
  const key = `${level}/${maxSteps}`;
  if (!SPECS.has(key)) {
    const spec = describe(level, maxSteps);
    SPECS.set(key, { spec, checks: new SpecChecks(spec) });
  }
  return SPECS.get(key);
}

const has = (object, key) => Object.prototype.hasOwnProperty.call(object, key);

/**
 * What a config asks for: the level, and the step limit (`max_episode_steps`, the level's
 * own when absent). A key or value this simulator does not know is INVALID_ARGUMENT.
 * @returns {{level: string, maxSteps: number}}
 */
function configOf(config) {
  const given = config || {};
  for (const key of Object.keys(given)) {
    if (!CONFIG_KEYS.includes(key)) {
      throw invalid(
        `config key ${quoted(key)} is unknown; this simulator takes only 'level' ('1', '2' or '3') ` +
          "and 'max_episode_steps'",
      );
    }
  }
  const level = has(given, 'level') ? given.level : DEFAULT_LEVEL;
  if (!has(LEVELS, level)) throw invalid(`config 'level': ${quoted(level)} is not one of '1', '2', '3'`);
  const maxSteps = has(given, 'max_episode_steps') ? maxStepsOf(given.max_episode_steps, level) : levelStepLimit(level);
  return { level, maxSteps };
}

// What Python's int() reads (ASCII digits only): the Python server parses the key so.
const INTEGER = /^\s*[+-]?[0-9]+(?:_[0-9]+)*\s*$/;

/** A `max_episode_steps` value: a decimal integer 1 .. the level's own limit. */
function maxStepsOf(text, level) {
  const limit = levelStepLimit(level);
  // The length first: a long value is refused without being parsed.
  if (text.length > MAX_STEPS_CHARS || !INTEGER.test(text)) {
    throw invalid(`config 'max_episode_steps': ${quoted(text)} is not an integer`);
  }
  const value = Number(text.trim().replace(/_/g, ''));
  if (value < 1 || value > limit) {
    throw invalid(
      `config 'max_episode_steps': ${value} is outside 1..${limit} ` +
        `(level ${level}'s own limit is ${limit}; the config can only shorten it)`,
    );
  }
  return value;
}

/**
 * The EnvSpec message of a spec (kind is already the oneof's field): what the server
 * reports for a session and what the client (client.js) opens its Act stream with.
 */
function specMessage(spec) {
  const tensorSpec = (s) => ({ name: s.name, dtype: dtypeOf(s.dtype), shape: s.shape, ...(s.kind || {}) });
  return {
    observations: spec.observations.map(tensorSpec),
    actions: spec.actions.map(tensorSpec),
    reward_names: spec.reward_names,
    max_episode_steps: spec.max_episode_steps,
  };
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
  /**
   * @param {string} id
   * @param {{level: string, maxSteps: number}} config
   * @param {string|bigint|number|null} seed any int64, or null for a random one
   * @param {string} [client] who opened it (its host), for the per-client quota
   */
  constructor(id, { level, maxSteps }, seed, client = '') {
    this.id = id;
    this.level = level;
    this.client = client;
    ({ spec: this.spec, checks: this.checks } = specOf(level, maxSteps));
    // One random stream for the session: the first reset uses the seed, later ones go on.
    this.game = new GridWorld(level, new Random(seed), maxSteps);
    this.lastUsed = Date.now();
    this.closed = false;
    this.closedWhy = null;
    // Called once if the idle reaper closes the session (a Session stream ends itself).
    this.onReaped = null;
  }

  /** Mark the session used now; a closed one (e.g. reaped while idle) is NOT_FOUND. */
  touch() {
    if (this.closed) throw notFound(`session ${this.id} was closed (${this.closedWhy})`);
    this.lastUsed = Date.now();
  }

  /**
   * Start an episode; its first observations (typed arrays by name). With a seed (any
   * int64), the session's random stream starts again from it first: the episode is the
   * one a session opened with that seed would start with.
   */
  resetArrays(seed = null) {
    this.touch();
    if (seed !== null && seed !== undefined) {
      try {
        this.game.random = new Random(seed);
      } catch (err) {
        throw invalid(`ResetRequest.seed: ${err.message}`);
      }
    }
    try {
      return this.game.reset();
    } catch (err) {
      this.game.running = false;
      throw internal(`the grid world's reset raised ${err.name}: ${err.message}`);
    }
  }

  /** @param {{seed?: string|null}} [request] a ResetRequest (its `seed` is optional) */
  reset(request = {}) {
    const seed = request.seed === undefined || request.seed === null ? null : request.seed;
    return { observations: observationTensors(this.spec, this.resetArrays(seed)) };
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

  close(why = 'by CloseSession') {
    this.closed = true;
    this.closedWhy = why;
    this.game.running = false;
  }
}

function checkActrep(actrep) {
  const value = actrep || 0;
  if (value < 0) throw invalid(`actrep must be >= 0 (0 means 1), got ${value}`);
  return value;
}

class Registry {
  /**
   * @param {{maxSessions: number, maxSessionsPerClient: number, idleTimeoutS: number}} settings
   *   maxSessionsPerClient 0 means no quota
   */
  constructor({ maxSessions = 64, maxSessionsPerClient = 0, idleTimeoutS = 300 } = {}) {
    this.maxSessions = maxSessions;
    this.maxSessionsPerClient = maxSessionsPerClient;
    this.idleTimeoutS = idleTimeoutS;
    this.sessions = new Map();
    this.perClient = new Map(); // client -> its open sessions (only while > 0)
  }

  get size() {
    return this.sessions.size;
  }

  /** How many sessions `client` has open. */
  sessionsOf(client) {
    return this.perClient.get(client) || 0;
  }

  /**
   * A new session for an OpenSessionRequest.
   * @param {string} [client] who asks (its host): one client may not take every slot
   */
  open(request, client = '') {
    if (request.protocol_version !== PROTOCOL_VERSION_1) {
      throw precondition(
        `protocol_version ${request.protocol_version} is not supported; ` +
          `this server speaks ${PROTOCOL_VERSION_1} (PROTOCOL_VERSION_1)`,
      );
    }
    // The quota first: a client over it should hear that its own sessions are the cause.
    const quota = this.maxSessionsPerClient;
    if (quota > 0 && this.sessionsOf(client) >= quota) {
      throw exhausted(
        `client ${quoted(client)} already has its quota of ${quota} open sessions ` +
          '(--max-sessions-per-client); close one first',
      );
    }
    if (this.sessions.size >= this.maxSessions) {
      throw exhausted(
        `this server already hosts its maximum of ${this.maxSessions} sessions; ` +
          'close one or use another server',
      );
    }
    const config = configOf(request.config);
    // `seed` is proto3 `optional`: present (even 0) only when the client set it.
    const seed = request.seed === undefined || request.seed === null ? null : request.seed;
    const session = new Session(crypto.randomUUID().replace(/-/g, ''), config, seed, client);
    this.sessions.set(session.id, session);
    this.perClient.set(client, this.sessionsOf(client) + 1);
    return session;
  }

  get(sessionId) {
    const session = this.sessions.get(sessionId);
    if (session === undefined) throw notFound(`no session ${quoted(sessionId)}`);
    return session;
  }

  /** Close a session (`why` for whoever still holds it); false when there is none of that id. */
  close(sessionId, why = 'by CloseSession') {
    const session = this.sessions.get(sessionId);
    if (session === undefined) return false;
    this.sessions.delete(sessionId);
    const left = this.sessionsOf(session.client) - 1;
    if (left > 0) this.perClient.set(session.client, left);
    else this.perClient.delete(session.client); // no entry per client ever seen
    session.close(why);
    return true;
  }

  closeAll() {
    for (const id of [...this.sessions.keys()]) this.close(id, 'the server is stopping');
  }

  /** Close sessions unused for longer than the idle timeout; their ids. */
  reapIdle(now = Date.now()) {
    if (!(this.idleTimeoutS > 0)) return [];
    const stale = [...this.sessions.values()].filter((session) => now - session.lastUsed > this.idleTimeoutS * 1000);
    for (const session of stale) this.close(session.id, 'idle past the timeout');
    // Told once all are closed, so a failing hook cannot leave a stale session open.
    for (const session of stale) if (session.onReaped !== null) session.onReaped();
    return stale.map((session) => session.id);
  }

  /** A StepMany request's answer: every check first, then every row stepped. */
  stepMany(request) {
    const ids = request.session_ids || [];
    if (ids.length === 0) throw invalid('StepMany: session_ids is empty');
    if (new Set(ids).size !== ids.length) throw invalid('StepMany: each session may appear once per call');
    const sessions = ids.map((id) => this.get(id)); // every NOT_FOUND before any step
    sessions.forEach((session, i) => {
      if (session.spec !== sessions[0].spec) { // specs are shared: same level and step limit
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

module.exports = { Registry, Session, configOf, specOf, specMessage, observationTensors, PROTOCOL_VERSION_1 };
