'use strict';
// The grid world itself: no gRPC here, so the rules can be tested on their own.
//
// An agent walks a walled grid to the coloured square its instruction names
// ("go to the red square"). Stepping onto that square wins (+1), onto another
// square loses (-1); an episode that lasts 4 * G steps times out.

const { Random } = require('./random');

// Level -> grid size (border walls included), targets, random interior walls.
const LEVELS = Object.freeze({
  1: Object.freeze({ size: 5, targets: 2, walls: 0 }),
  2: Object.freeze({ size: 7, targets: 3, walls: 0 }),
  3: Object.freeze({ size: 9, targets: 4, walls: 3 }),
});

const VOCABULARY = Object.freeze(['<pad>', 'go', 'to', 'the', 'red', 'green', 'blue', 'yellow', 'square']);
const COLORS = Object.freeze(['red', 'green', 'blue', 'yellow']); // token id = 4 + index
const COLOR_RGB = Object.freeze([
  [255, 0, 0],
  [0, 255, 0],
  [0, 0, 255],
  [255, 255, 0],
]);
const WALL_RGB = [128, 128, 128];
const AGENT_RGB = [255, 255, 255];
const INSTRUCTION_LENGTH = 5;

// Action -> [row change, column change]: up, down, left, right.
const MOVES = Object.freeze([
  [-1, 0],
  [1, 0],
  [0, -1],
  [0, 1],
]);

const WALL = 1;

/** The level's settings; an unknown level is an Error naming it. */
function levelSettings(level) {
  const settings = Object.prototype.hasOwnProperty.call(LEVELS, level) ? LEVELS[level] : undefined;
  if (settings === undefined) {
    throw new Error(`level '${level}' is not one of '1', '2', '3'`);
  }
  return settings;
}

/** A level's own step limit, 4 * G. */
function levelStepLimit(level) {
  return 4 * levelSettings(level).size;
}

/**
 * What a level looks like to a learner: observations, actions, rewards, step limit.
 * Plain data with dtype names; the server turns it into an EnvSpec message.
 * @param {number} [maxSteps] a shorter step limit than the level's own (checked by GridWorld)
 */
function describe(level, maxSteps = undefined) {
  const { size } = levelSettings(level);
  return {
    observations: [
      { name: 'image', dtype: 'uint8', shape: [3, size, size] },
      {
        name: 'instruction',
        dtype: 'int64',
        shape: [INSTRUCTION_LENGTH],
        kind: { language: { vocabulary_size: VOCABULARY.length } },
      },
    ],
    actions: [{ name: 'action', dtype: 'int64', shape: [1], kind: { discrete: { num_values: MOVES.length } } }],
    reward_names: ['reward'],
    max_episode_steps: maxSteps === undefined ? 4 * size : maxSteps,
  };
}

class GridWorld {
  /**
   * @param {string|number} level '1', '2' or '3'
   * @param {Random} [random] the stream every reset draws from (one per session, so a
   *   seeded session's episodes follow each other deterministically)
   * @param {number} [maxSteps] the step limit, 1 .. the level's own 4 * G (the default)
   */
  constructor(level, random = new Random(), maxSteps = undefined) {
    const settings = levelSettings(level);
    const limit = 4 * settings.size;
    const steps = maxSteps === undefined ? limit : maxSteps;
    if (!Number.isInteger(steps) || steps < 1 || steps > limit) {
      throw new RangeError(`maxSteps ${maxSteps} is outside 1..${limit} (level ${level}'s limit)`);
    }
    this.level = String(level);
    this.size = settings.size;
    this.numTargets = settings.targets;
    this.numWalls = settings.walls;
    this.maxSteps = steps;
    this.random = random;
    this.running = false;
  }

  /** Start an episode on a fresh random layout; the first observations. */
  reset() {
    const layout = this._layout();
    this.walls = layout.walls;
    this.agent = layout.agent;
    this.targets = layout.targets;
    this.goal = this.random.int(this.targets.length); // index into targets
    this.steps = 0;
    this.running = true;
    return this.observe();
  }

  /**
   * Apply `action` up to `repeat` times (stopping when the episode ends), summing rewards.
   * @returns {{reward: number, gameOver: number, timeOut: boolean}}
   */
  step(action, repeat = 1) {
    if (!this.running) throw new Error('step before reset or after the episode ended');
    if (!Number.isInteger(action) || action < 0 || action >= MOVES.length) {
      throw new RangeError(`action ${action} is outside 0..${MOVES.length - 1}`);
    }
    let reward = 0;
    let gameOver = 0;
    let timeOut = false;
    for (let i = 0; i < Math.max(1, repeat); i++) {
      const moved = this._move(action);
      reward += moved.reward;
      gameOver = moved.gameOver;
      this.steps += 1;
      // A game over on the limit's own step wins: the episode ended by the game, and a
      // learner must not bootstrap through it as it would through a time-out.
      timeOut = gameOver === 0 && this.steps >= this.maxSteps;
      if (gameOver !== 0 || timeOut) {
        this.running = false;
        break;
      }
    }
    return { reward, gameOver, timeOut };
  }

  /** One move: walls stop the agent; stepping onto a target ends the episode. */
  _move(action) {
    const [dr, dc] = MOVES[action];
    const row = this.agent.row + dr;
    const col = this.agent.col + dc;
    if (this.walls[row * this.size + col] !== WALL) this.agent = { row, col };
    const hit = this.targets.findIndex((t) => t.row === this.agent.row && t.col === this.agent.col);
    if (hit < 0) return { reward: 0, gameOver: 0 };
    return hit === this.goal ? { reward: 1, gameOver: 1 } : { reward: -1, gameOver: -1 };
  }

  /** The observations: a channels-first RGB image (one pixel per cell) and the instruction. */
  observe() {
    const g = this.size;
    const plane = g * g;
    const image = new Uint8Array(3 * plane);
    const paint = (row, col, rgb) => {
      const at = row * g + col;
      image[at] = rgb[0];
      image[plane + at] = rgb[1];
      image[2 * plane + at] = rgb[2];
    };
    for (let at = 0; at < plane; at++) {
      if (this.walls[at] === WALL) paint(Math.floor(at / g), at % g, WALL_RGB);
    }
    for (const t of this.targets) paint(t.row, t.col, COLOR_RGB[t.color]);
    paint(this.agent.row, this.agent.col, AGENT_RGB); // drawn last: on top when it ends on a target
    return { image, instruction: this.instruction() };
  }

  /** Token ids of "go to the <colour> square". */
  instruction() {
    const color = this.targets[this.goal].color;
    return BigInt64Array.from([1n, 2n, 3n, BigInt(4 + color), 8n]);
  }

  /** The instruction as words, for people and tests. */
  instructionText() {
    return Array.from(this.instruction(), (id) => VOCABULARY[Number(id)]).join(' ');
  }

  /**
   * A random layout whose every target can be reached. Re-sampled until it holds: walls
   * (level 3), or other targets around the agent, can cut a target off.
   */
  _layout() {
    const g = this.size;
    for (;;) {
      const walls = new Uint8Array(g * g);
      const interior = [];
      for (let row = 0; row < g; row++) {
        for (let col = 0; col < g; col++) {
          if (row === 0 || col === 0 || row === g - 1 || col === g - 1) walls[row * g + col] = WALL;
          else interior.push({ row, col });
        }
      }
      const [inner, free] = splitSample(this.random, interior, this.numWalls);
      for (const cell of inner) walls[cell.row * g + cell.col] = WALL;
      const [agent, ...cells] = this.random.sample(free, 1 + this.numTargets);
      const colors = this.random.sample([0, 1, 2, 3], this.numTargets);
      const targets = cells.map((cell, i) => ({ row: cell.row, col: cell.col, color: colors[i] }));
      if (allReachable(g, walls, agent, targets)) return { walls, agent, targets };
    }
  }
}

/** `count` random items of `items`, and the rest (in their order). */
function splitSample(random, items, count) {
  const chosen = random.sample(items, count);
  return [chosen, items.filter((item) => !chosen.includes(item))];
}

/**
 * Whether a breadth-first search from the agent reaches every target. A target ends the
 * episode, so the search stops at targets: none may be reachable only through another.
 */
function allReachable(size, walls, agent, targets) {
  const isTarget = new Uint8Array(size * size);
  for (const t of targets) isTarget[t.row * size + t.col] = 1;
  const seen = new Uint8Array(size * size);
  const queue = [agent.row * size + agent.col];
  seen[queue[0]] = 1;
  let found = 0;
  for (let head = 0; head < queue.length; head++) {
    const at = queue[head];
    if (isTarget[at]) {
      found += 1;
      continue;
    }
    const row = Math.floor(at / size);
    const col = at % size;
    for (const [dr, dc] of MOVES) {
      const next = (row + dr) * size + (col + dc);
      if (walls[next] !== WALL && !seen[next]) {
        seen[next] = 1;
        queue.push(next);
      }
    }
  }
  return found === targets.length;
}

module.exports = {
  GridWorld,
  LEVELS,
  VOCABULARY,
  COLORS,
  COLOR_RGB,
  WALL_RGB,
  AGENT_RGB,
  MOVES,
  describe,
  levelSettings,
  levelStepLimit,
  allReachable,
};
