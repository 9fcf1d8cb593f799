'use strict';
// The rules of the grid world, without gRPC.

const assert = require('node:assert/strict');
const { test } = require('node:test');

const { GridWorld, LEVELS, COLOR_RGB, AGENT_RGB, WALL_RGB, describe, allReachable } = require('../game');
const { Random } = require('../random');

/** A level-1 game with a hand-made layout (border walls only). */
function placed({ agent, targets, goal = 0, maxSteps = undefined }) {
  const game = new GridWorld('1', new Random(0), maxSteps);
  game.reset();
  game.agent = agent;
  game.targets = targets;
  game.goal = goal;
  return game;
}

const pixel = (obs, size, row, col) => {
  const plane = size * size;
  const at = row * size + col;
  return [obs.image[at], obs.image[plane + at], obs.image[2 * plane + at]];
};

test('a seed replays the same episodes; later resets go on with the stream', () => {
  const play = (seed) => {
    const game = new GridWorld('3', new Random(seed));
    const frames = [];
    for (let episode = 0; episode < 3; episode++) {
      frames.push(Buffer.from(game.reset().image).toString('hex'));
      for (let t = 0; t < 5 && game.running; t++) game.step(t % 4);
      frames.push(Buffer.from(game.observe().image).toString('hex'));
    }
    return frames;
  };
  assert.deepEqual(play(42), play(42));
  assert.deepEqual(play(-7n), play('-7'));
  assert.notDeepEqual(play(42), play(43));
  const episodes = play(42).filter((_, i) => i % 2 === 0);
  assert.equal(new Set(episodes).size, 3);
});

test('no seed: two games differ', () => {
  const a = new GridWorld('3').reset();
  const b = new GridWorld('3').reset();
  assert.notDeepEqual([...a.image], [...b.image]);
});

test('each level: size, targets, walls, distinct cells and colours, the instruction names a target', () => {
  for (const [level, settings] of Object.entries(LEVELS)) {
    const g = settings.size;
    for (let seed = 0; seed < 50; seed++) {
      const game = new GridWorld(level, new Random(seed));
      const obs = game.reset();
      assert.equal(obs.image.length, 3 * g * g);
      assert.equal(game.targets.length, settings.targets);
      const cells = [game.agent, ...game.targets].map((c) => `${c.row},${c.col}`);
      assert.equal(new Set(cells).size, cells.length);
      assert.equal(new Set(game.targets.map((t) => t.color)).size, settings.targets);
      for (const c of [game.agent, ...game.targets]) {
        assert.ok(c.row > 0 && c.col > 0 && c.row < g - 1 && c.col < g - 1, 'on the interior');
        assert.equal(game.walls[c.row * g + c.col], 0);
      }
      const interiorWalls = [...game.walls].filter((w, at) => {
        const row = Math.floor(at / g);
        const col = at % g;
        return w && row > 0 && col > 0 && row < g - 1 && col < g - 1;
      });
      assert.equal(interiorWalls.length, settings.walls);
      assert.deepEqual(pixel(obs, g, game.agent.row, game.agent.col), AGENT_RGB);
      assert.deepEqual(pixel(obs, g, 0, 0), WALL_RGB);
      for (const t of game.targets) assert.deepEqual(pixel(obs, g, t.row, t.col), COLOR_RGB[t.color]);
      const words = game.instructionText().split(' ');
      assert.deepEqual(words.slice(0, 3), ['go', 'to', 'the']);
      assert.equal(words[4], 'square');
      assert.equal(Number(obs.instruction[3]), 4 + game.targets[game.goal].color);
      assert.ok(allReachable(g, game.walls, game.agent, game.targets));
    }
  }
});

test('the spec of each level', () => {
  for (const [level, g] of [['1', 5], ['2', 7], ['3', 9]]) {
    const spec = describe(level);
    assert.deepEqual(spec.observations[0], { name: 'image', dtype: 'uint8', shape: [3, g, g] });
    assert.deepEqual(spec.observations[1].kind, { language: { vocabulary_size: 9 } });
    assert.deepEqual(spec.actions, [
      { name: 'action', dtype: 'int64', shape: [1], kind: { discrete: { num_values: 4 } } },
    ]);
    assert.deepEqual(spec.reward_names, ['reward']);
    assert.equal(spec.max_episode_steps, 4 * g);
  }
  assert.throws(() => describe('4'), /level '4'/);
});

test('"go to the red square" is [1, 2, 3, 4, 8]', () => {
  const game = placed({ agent: { row: 1, col: 1 }, targets: [{ row: 3, col: 3, color: 0 }] });
  assert.deepEqual([...game.instruction()], [1n, 2n, 3n, 4n, 8n]);
  assert.equal(game.instructionText(), 'go to the red square');
});

test('stepping onto the instructed target is a success', () => {
  const game = placed({
    agent: { row: 1, col: 1 },
    targets: [{ row: 1, col: 2, color: 2 }, { row: 3, col: 3, color: 0 }],
    goal: 0,
  });
  assert.deepEqual(game.step(3), { reward: 1, gameOver: 1, timeOut: false });
  assert.equal(game.running, false);
  assert.throws(() => game.step(3), /after the episode ended/);
});

test('stepping onto another target is a failure', () => {
  const game = placed({
    agent: { row: 1, col: 1 },
    targets: [{ row: 1, col: 2, color: 2 }, { row: 2, col: 1, color: 0 }],
    goal: 0,
  });
  assert.deepEqual(game.step(1), { reward: -1, gameOver: -1, timeOut: false });
});

test('walls stop the agent in every direction', () => {
  const game = placed({ agent: { row: 1, col: 1 }, targets: [{ row: 3, col: 3, color: 0 }] });
  game.step(0); // up, into the border
  game.step(2); // left, into the border
  assert.deepEqual(game.agent, { row: 1, col: 1 });
  game.step(1);
  assert.deepEqual(game.agent, { row: 2, col: 1 });
  game.walls[2 * 5 + 2] = 1; // an interior wall to the right
  game.step(3);
  assert.deepEqual(game.agent, { row: 2, col: 1 });
});

test('the episode times out after 4 * G steps without a game over', () => {
  const game = placed({ agent: { row: 1, col: 1 }, targets: [{ row: 3, col: 3, color: 0 }] });
  for (let t = 1; t < 20; t++) assert.deepEqual(game.step(0), { reward: 0, gameOver: 0, timeOut: false });
  assert.deepEqual(game.step(0), { reward: 0, gameOver: 0, timeOut: true });
  assert.equal(game.running, false);
});

test('a game over on the last step is not a time-out', () => {
  const game = placed({ agent: { row: 1, col: 1 }, targets: [{ row: 2, col: 1, color: 0 }] });
  for (let t = 1; t < 20; t++) game.step(0);
  assert.deepEqual(game.step(1), { reward: 1, gameOver: 1, timeOut: false });
});

test('a shorter step limit: the time-out comes at it, and a game over on it still wins', () => {
  const idle = placed({ agent: { row: 1, col: 1 }, targets: [{ row: 3, col: 3, color: 0 }], maxSteps: 3 });
  assert.deepEqual(idle.step(0), { reward: 0, gameOver: 0, timeOut: false });
  assert.deepEqual(idle.step(0, 10), { reward: 0, gameOver: 0, timeOut: true });
  assert.equal(idle.steps, 3);
  // The agent reaches a target on the limit's own step: the game over wins, no time-out.
  // The agent ends on the target at (3, 1): the goal (goal 0), or a trap (goal 1).
  const targets = [{ row: 3, col: 1, color: 0 }, { row: 1, col: 3, color: 1 }];
  for (const [goal, gameOver, reward] of [[0, 1, 1], [1, -1, -1]]) {
    const game = placed({ agent: { row: 1, col: 1 }, targets, goal, maxSteps: 3 });
    assert.deepEqual(game.step(0), { reward: 0, gameOver: 0, timeOut: false }); // into the wall
    assert.deepEqual(game.step(1), { reward: 0, gameOver: 0, timeOut: false });
    const onto = gameOver > 0 ? 'goal' : 'trap';
    assert.deepEqual(game.step(1), { reward, gameOver, timeOut: false }, `step 3 of 3 onto the ${onto}`);
    assert.equal(game.running, false);
  }
  // With actrep the repeats stop at the limit too, and the same rule holds.
  const repeated = placed({ agent: { row: 1, col: 1 }, targets: [{ row: 3, col: 1, color: 0 }], maxSteps: 2 });
  assert.deepEqual(repeated.step(1, 5), { reward: 1, gameOver: 1, timeOut: false });
  assert.equal(repeated.steps, 2);
});

test('the step limit must be 1 .. the level\'s own', () => {
  for (const bad of [0, -1, 21, 1.5, NaN]) {
    assert.throws(() => new GridWorld('1', new Random(0), bad), RangeError, String(bad));
  }
  assert.equal(new GridWorld('1', new Random(0), 20).maxSteps, 20);
  assert.equal(new GridWorld('3', new Random(0)).maxSteps, 36);
  assert.equal(describe('2', 5).max_episode_steps, 5);
});

test('actrep repeats the action, summing rewards, and stops at the end', () => {
  const game = placed({ agent: { row: 1, col: 1 }, targets: [{ row: 3, col: 1, color: 0 }] });
  assert.deepEqual(game.step(1, 10), { reward: 1, gameOver: 1, timeOut: false });
  assert.equal(game.steps, 2);
  const idle = placed({ agent: { row: 1, col: 1 }, targets: [{ row: 3, col: 3, color: 0 }] });
  assert.deepEqual(idle.step(0, 100), { reward: 0, gameOver: 0, timeOut: true });
  assert.equal(idle.steps, 20);
});

test('the agent is drawn over the target it ends on', () => {
  const game = placed({ agent: { row: 1, col: 1 }, targets: [{ row: 1, col: 2, color: 1 }] });
  game.step(3);
  assert.deepEqual(pixel(game.observe(), 5, 1, 2), AGENT_RGB);
});

test('reachability: walls or other targets can cut a target off', () => {
  const walls = new Uint8Array(25);
  for (let at = 0; at < 25; at++) {
    const row = Math.floor(at / 5);
    const col = at % 5;
    if (row === 0 || col === 0 || row === 4 || col === 4) walls[at] = 1;
  }
  const agent = { row: 1, col: 1 };
  const far = { row: 3, col: 3, color: 0 };
  assert.ok(allReachable(5, walls, agent, [far]));
  // boxed in by two targets: they are reachable, the third is not
  const blockers = [{ row: 1, col: 2, color: 1 }, { row: 2, col: 1, color: 2 }];
  assert.equal(allReachable(5, walls, agent, blockers), true);
  assert.equal(allReachable(5, walls, agent, [...blockers, far]), false);
  const walled = walls.slice();
  walled[1 * 5 + 2] = 1;
  walled[2 * 5 + 1] = 1;
  assert.equal(allReachable(5, walled, agent, [far]), false);
});

test('level 3 layouts always have every target reachable (re-sampled until they do)', () => {
  const game = new GridWorld('3', new Random(123));
  for (let episode = 0; episode < 500; episode++) {
    game.reset();
    assert.ok(allReachable(9, game.walls, game.agent, game.targets));
  }
});
