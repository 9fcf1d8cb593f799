'use strict';
// What a spec allows of the client's actions, precomputed once per spec. A bad action is
// INVALID_ARGUMENT and its message says the field and what the spec wants (the wording
// matches FLARE's Python server, so both read alike).

const { invalid, quoted } = require('./errors');
const { TensorError, decode, dtypeName, dtypeOf, formatShape } = require('./tensors');

// Names as Python's repr writes them; a client's (an unknown action) at most 64 characters.
const quote = quoted;

class ActionCheck {
  constructor(spec) {
    this.name = spec.name;
    this.field = `actions[${quote(spec.name)}]`;
    this.wire = dtypeOf(spec.dtype);
    this.shape = spec.shape;
    const kind = spec.kind || {};
    // Discrete values or vocabulary ids run 0 .. limit - 1; anything else is unchecked.
    this.limit = kind.discrete ? kind.discrete.num_values : kind.language ? kind.language.vocabulary_size : null;
  }

  /** The checked values (a typed array), `batch` rows of the spec's shape when given. */
  decode(tensor, batch) {
    if (tensor.dtype !== this.wire) {
      throw invalid(`${this.field}: dtype ${dtypeName(tensor.dtype)}, the spec says ${dtypeName(this.wire)}`);
    }
    const shape = batch === undefined ? this.shape : [batch, ...this.shape];
    const got = tensor.shape || [];
    if (got.length !== shape.length || got.some((dim, i) => Number(dim) !== shape[i])) {
      throw invalid(`${this.field}: shape ${formatShape(got)}, the spec says ${formatShape(shape)}`);
    }
    let values;
    try {
      ({ values } = decode(tensor, this.field));
    } catch (err) {
      if (err instanceof TensorError) throw invalid(err.message);
      throw err;
    }
    if (this.limit !== null) {
      const limit = typeof values[0] === 'bigint' ? BigInt(this.limit) : this.limit;
      for (const value of values) {
        if (value < 0 || value >= limit) {
          throw invalid(`${this.field}: value ${value} is outside 0..${this.limit - 1}`);
        }
      }
    }
    return values;
  }
}

class SpecChecks {
  constructor(spec) {
    this.actions = spec.actions.map((action) => new ActionCheck(action));
  }

  /** Every action checked (name, dtype, shape, bytes, range) and decoded, by name. */
  decodeActions(tensors, batch) {
    const given = tensors || {};
    const decoded = {};
    for (const action of this.actions) {
      if (!Object.prototype.hasOwnProperty.call(given, action.name)) {
        this._refuseUnknown(given); // a misspelt name says more than "missing"
        throw invalid(`missing action ${quote(action.name)}`);
      }
      decoded[action.name] = action.decode(given[action.name], batch);
    }
    if (Object.keys(given).length !== this.actions.length) this._refuseUnknown(given);
    return decoded;
  }

  _refuseUnknown(given) {
    const known = this.actions.map((action) => action.name);
    for (const name of Object.keys(given)) {
      if (!known.includes(name)) {
        throw invalid(`unknown action ${quote(name)}; the spec's actions are [${known.map(quote).join(', ')}]`);
      }
    }
  }
}

module.exports = { ActionCheck, SpecChecks };
