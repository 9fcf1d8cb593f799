'use strict';
// Tensors on the wire (flare.simulator.v1.Tensor) <-> typed arrays. No gRPC here.
//
// Numeric payloads are raw little-endian C-order bytes. On a little-endian host a typed
// array can view them directly, but only at an offset aligned to its element size (a
// decoded Buffer often sits at an odd offset of a shared pool), so unaligned data is
// copied first. A big-endian host goes element by element through a DataView.

const os = require('os');

// The proto's DType numbers; server.js checks them against the loaded proto at start-up.
const DType = Object.freeze({
  UNSPECIFIED: 0,
  FLOAT32: 1,
  FLOAT64: 2,
  INT32: 3,
  INT64: 4,
  UINT8: 5,
  BOOL: 6,
  STRING: 7,
});

const NUMERIC = Object.freeze({
  [DType.FLOAT32]: { name: 'float32', size: 4, Array: Float32Array, get: 'getFloat32', set: 'setFloat32' },
  [DType.FLOAT64]: { name: 'float64', size: 8, Array: Float64Array, get: 'getFloat64', set: 'setFloat64' },
  [DType.INT32]: { name: 'int32', size: 4, Array: Int32Array, get: 'getInt32', set: 'setInt32' },
  [DType.INT64]: { name: 'int64', size: 8, Array: BigInt64Array, get: 'getBigInt64', set: 'setBigInt64' },
  [DType.UINT8]: { name: 'uint8', size: 1, Array: Uint8Array, get: 'getUint8', set: 'setUint8' },
  [DType.BOOL]: { name: 'bool', size: 1, Array: Uint8Array, get: 'getUint8', set: 'setUint8' },
});

const BY_NAME = Object.freeze({
  float32: DType.FLOAT32,
  float64: DType.FLOAT64,
  int32: DType.INT32,
  int64: DType.INT64,
  uint8: DType.UINT8,
  bool: DType.BOOL,
  string: DType.STRING,
});

const LITTLE_ENDIAN_HOST = os.endianness() === 'LE';

/** A tensor that cannot be encoded or decoded; the message names the field. */
class TensorError extends Error {
  constructor(message) {
    super(message);
    this.name = 'TensorError';
  }
}

/** The proto's name of a dtype number, e.g. DTYPE_INT64 (as Python's checks write it). */
function dtypeName(dtype) {
  const name = Object.keys(DType).find((key) => DType[key] === dtype);
  return name === undefined ? String(dtype) : `DTYPE_${name}`;
}

/** The wire dtype number of a name such as 'uint8'. */
function dtypeOf(name) {
  const dtype = BY_NAME[name];
  if (dtype === undefined) throw new TensorError(`dtype ${name} has no wire type`);
  return dtype;
}

const SHAPE_DIMS_SHOWN = 8; // a client's shape may have any number of dims: show this many

/**
 * A shape as Python prints a list: [2, 1]. A longer one than any spec here has shows its
 * first dims and how many there were, [1, 1, 1, 1, 1, 1, 1, 1, ...(5000 dims)], so an
 * error message stays small whatever the client sent.
 */
function formatShape(shape) {
  if (shape.length <= SHAPE_DIMS_SHOWN) return `[${shape.join(', ')}]`;
  return `[${shape.slice(0, SHAPE_DIMS_SHOWN).join(', ')}, ...(${shape.length} dims)]`;
}

/**
 * A wire shape (int64 dims: numbers or, with proto-loader's `longs: String`, strings) as
 * numbers; a negative or absurd dimension is a TensorError.
 */
function shapeOf(tensor, field) {
  const shape = (tensor.shape || []).map(Number);
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) {
      throw new TensorError(`${field}: bad dimension in shape ${formatShape(tensor.shape || [])}`);
    }
  }
  return shape;
}

function product(shape) {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * A wire tensor's elements: a typed array (BigInt64Array for int64, Uint8Array of 0/1 for
 * bool) or, for strings, an array of strings. Checks the byte count against the shape.
 * @returns {{dtype: number, shape: number[], values: ArrayLike}}
 */
function decode(tensor, field = 'tensor') {
  const shape = shapeOf(tensor, field);
  const count = product(shape);
  if (tensor.dtype === DType.STRING) {
    const strings = tensor.strings || [];
    if (strings.length !== count) {
      throw new TensorError(`${field}: shape ${formatShape(shape)} needs ${count} strings, got ${strings.length}`);
    }
    return { dtype: tensor.dtype, shape, values: strings.slice() };
  }
  const info = NUMERIC[tensor.dtype];
  if (info === undefined) throw new TensorError(`${field}: unknown dtype ${tensor.dtype}`);
  const data = tensor.data || Buffer.alloc(0);
  const expected = count * info.size;
  if (data.length !== expected) {
    throw new TensorError(
      `${field}: shape ${formatShape(shape)} of ${info.name} needs ${expected} bytes, got ${data.length}`,
    );
  }
  const values = toTypedArray(data, info, count);
  if (tensor.dtype === DType.BOOL && values.some((v) => v > 1)) {
    throw new TensorError(`${field}: bool elements must be 0 or 1`);
  }
  return { dtype: tensor.dtype, shape, values };
}

function toTypedArray(data, info, count) {
  if (LITTLE_ENDIAN_HOST) {
    if (data.byteOffset % info.size === 0) return new info.Array(data.buffer, data.byteOffset, count);
    const copy = new info.Array(count); // unaligned: a typed array cannot view it, so copy
    new Uint8Array(copy.buffer).set(data);
    return copy;
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const values = new info.Array(count);
  for (let i = 0; i < count; i++) values[i] = view[info.get](i * info.size, true);
  return values;
}

/**
 * A wire tensor of `dtype` (number or name) and `shape` holding `values` (a typed array of
 * that dtype, or strings for 'string'), in C order. No copy on a little-endian host.
 */
function encode(dtype, shape, values) {
  const wire = typeof dtype === 'string' ? dtypeOf(dtype) : dtype;
  const count = product(shape);
  if (values.length !== count) {
    throw new TensorError(`shape ${formatShape(shape)} needs ${count} elements, got ${values.length}`);
  }
  if (wire === DType.STRING) return { dtype: wire, shape: shape.slice(), strings: Array.from(values, String) };
  const info = NUMERIC[wire];
  if (info === undefined) throw new TensorError(`unknown dtype ${dtype}`);
  if (!(values instanceof info.Array)) {
    throw new TensorError(`${info.name} values must be a ${info.Array.name}, got ${values.constructor.name}`);
  }
  let data;
  if (LITTLE_ENDIAN_HOST) {
    data = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  } else {
    data = Buffer.alloc(count * info.size);
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (let i = 0; i < count; i++) view[info.set](i * info.size, values[i], true);
  }
  return { dtype: wire, shape: shape.slice(), data };
}

module.exports = { DType, NUMERIC, TensorError, decode, encode, dtypeName, dtypeOf, formatShape, product };
