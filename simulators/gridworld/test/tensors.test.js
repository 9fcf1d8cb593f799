'use strict';
// The tensor codec: little-endian C-order bytes, exact byte counts, unaligned buffers.

const assert = require('node:assert/strict');
const { test } = require('node:test');

const { DType, TensorError, decode, encode, dtypeName } = require('../tensors');

test('encode writes little-endian bytes of the given shape', () => {
  const t = encode('int64', [2], BigInt64Array.of(1n, -2n));
  assert.equal(t.dtype, DType.INT64);
  assert.deepEqual(t.shape, [2]);
  assert.equal(t.data.toString('hex'), '0100000000000000' + 'feffffffffffffff');
  assert.equal(encode('float32', [1], Float32Array.of(1)).data.toString('hex'), '0000803f');
  assert.equal(encode('int32', [1], Int32Array.of(-1)).data.toString('hex'), 'ffffffff');
  assert.deepEqual(encode('string', [2], ['a', 'b']).strings, ['a', 'b']);
  assert.throws(() => encode('uint8', [2, 2], new Uint8Array(3)), /needs 4 elements/);
  assert.throws(() => encode('int64', [1], Int32Array.of(1)), /BigInt64Array/);
});

test('every dtype round-trips', () => {
  const cases = [
    ['float32', Float32Array.of(1.5, -2)],
    ['float64', Float64Array.of(Math.PI, -0)],
    ['int32', Int32Array.of(7, -7)],
    ['int64', BigInt64Array.of(2n ** 62n, -1n)],
    ['uint8', Uint8Array.of(0, 255)],
    ['bool', Uint8Array.of(1, 0)],
  ];
  for (const [name, values] of cases) {
    const back = decode(encode(name, [2, 1], values), name);
    assert.deepEqual(back.shape, [2, 1]);
    assert.deepEqual([...back.values], [...values]);
  }
});

test('decode reads data at an unaligned offset (a copy) and int64 shapes given as strings', () => {
  const pool = Buffer.alloc(17);
  pool.writeBigInt64LE(3n, 1);
  pool.writeBigInt64LE(-4n, 9);
  const data = pool.subarray(1); // byteOffset 1: no BigInt64Array can view it
  const { shape, values } = decode({ dtype: DType.INT64, shape: ['2'], data });
  assert.deepEqual(shape, [2]);
  assert.deepEqual([...values], [3n, -4n]);
});

test('malformed tensors are TensorErrors naming the field', () => {
  const bad = (tensor, pattern) =>
    assert.throws(() => decode(tensor, "actions['action']"), (err) => err instanceof TensorError && pattern.test(err.message));
  bad({ dtype: DType.INT64, shape: [1], data: Buffer.from([1, 0]) }, /^actions\['action'\]: shape \[1\] of int64 needs 8 bytes, got 2$/);
  bad({ dtype: DType.BOOL, shape: [1], data: Buffer.from([2]) }, /bool elements must be 0 or 1/);
  bad({ dtype: DType.UINT8, shape: ['-1'], data: Buffer.alloc(0) }, /bad dimension/);
  bad({ dtype: 42, shape: [1], data: Buffer.alloc(1) }, /unknown dtype 42/);
  bad({ dtype: DType.STRING, shape: [2], strings: ['a'] }, /needs 2 strings, got 1/);
});

test('dtype names as the proto spells them', () => {
  assert.equal(dtypeName(DType.FLOAT32), 'DTYPE_FLOAT32');
  assert.equal(dtypeName(99), '99');
});
