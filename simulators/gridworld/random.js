'use strict';
// A small seeded random stream (sfc32), so a seeded session replays exactly:
// Math.random cannot be seeded.

const crypto = require('crypto');

const UINT32 = 2 ** 32;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * A seed's 64 bits. The wire's int64 arrives as a decimal string (a JS number cannot hold
 * all 64 bits), negative ones included; as two's complement every int64 gets its own
 * 64 bits, so no two seeds share a stream. Anything but an int64 is a RangeError, not a
 * silent wrap-around or BigInt's '' -> 0n.
 */
function seedBits(seed) {
  let value;
  try {
    value = typeof seed === 'string' && seed.trim() === '' ? null : BigInt(seed);
  } catch (err) {
    value = null; // not an integer: a fraction, NaN, 'abc'
  }
  if (value === null || value < INT64_MIN || value > INT64_MAX) {
    throw new RangeError(`seed ${String(seed).slice(0, 64)} is not an int64`);
  }
  return BigInt.asUintN(64, value);
}

class Random {
  /**
   * @param {bigint|number|string|null|undefined} seed any int64 (all 64 bits are used);
   *   null or undefined draws a seed from the OS, so the stream is unpredictable.
   */
  constructor(seed) {
    const bits = seed === null || seed === undefined ? crypto.randomBytes(8).readBigUInt64LE(0) : seedBits(seed);
    this.a = Number(bits & 0xffffffffn) >>> 0;
    this.b = Number(bits >> 32n) >>> 0;
    this.c = 0x9e3779b9; // a fixed constant keeps seeds 0 and 1 far apart after warm-up
    this.d = 1;
    for (let i = 0; i < 15; i++) this.nextUint32(); // mix the seed into all of the state
  }

  /** The next 32 random bits (sfc32, Chris Doty-Humphrey's small fast chaotic PRNG). */
  nextUint32() {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A float in [0, 1). */
  next() {
    return this.nextUint32() / UINT32;
  }

  /** An integer in 0 .. n - 1 (n is small here, so the modulo bias of this is negligible). */
  int(n) {
    return Math.floor(this.next() * n);
  }

  /** `count` distinct items of `items`, in random order (a partial Fisher-Yates shuffle). */
  sample(items, count) {
    const pool = items.slice();
    for (let i = 0; i < count; i++) {
      const j = i + this.int(pool.length - i);
      [pool[i], pool[j]] = [pool[j], pool[i]];
    }
    return pool.slice(0, count);
  }
}

module.exports = { Random, seedBits };
