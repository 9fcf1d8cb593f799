'use strict';
// The seeded stream: every int64 seed, as the wire's decimal strings bring them.

const assert = require('node:assert/strict');
const { test } = require('node:test');

const { Random, seedBits } = require('../random');

const draws = (seed, n = 8) => {
  const random = new Random(seed);
  return Array.from({ length: n }, () => random.nextUint32());
};

test('every int64 seed works and replays, negative ones and the limits included', () => {
  const seeds = ['-9223372036854775808', '9223372036854775807', '-1', '0', '1', '-42', '42'];
  for (const seed of seeds) assert.deepEqual(draws(seed), draws(seed), `seed ${seed}`);
  // Two's complement: each int64 its own 64 bits, so no two seeds share a stream.
  assert.equal(seedBits('-1'), 2n ** 64n - 1n);
  assert.equal(seedBits('-9223372036854775808'), 2n ** 63n);
  assert.equal(seedBits('9223372036854775807'), 2n ** 63n - 1n);
  assert.equal(new Set(seeds.map((seed) => draws(seed).join())).size, seeds.length);
  // The same seed however it is written: a wire string, a BigInt, a number.
  assert.deepEqual(draws('-42'), draws(-42n));
  assert.deepEqual(draws('-42'), draws(-42));
});

test('what is not an int64 is a RangeError, never a silent wrap-around', () => {
  for (const bad of ['9223372036854775808', '-9223372036854775809', '', ' ', '1.5', 1.5, 'abc', NaN, {}]) {
    assert.throws(() => new Random(bad), RangeError, String(bad));
  }
});

test('no seed draws one from the OS', () => {
  assert.notDeepEqual(draws(null), draws(undefined));
});
