'use strict';
// The one proto3 rule protobufjs's decoder does not enforce: a string field holds valid
// UTF-8. protobufjs turns bad bytes into U+FFFD and carries on; the Python server's
// protobuf refuses the message ("String field had bad UTF-8"), so without this check the
// same bytes would be INVALID_ARGUMENT there and, say, NOT_FOUND here.
//
// The check walks the wire bytes with the message's descriptor (as @grpc/proto-loader
// gives it), looks only at length-delimited fields, and skips everything else. It runs
// after protobufjs has decoded the bytes, so it only has to find bad strings: anything
// else it cannot follow is left to protobufjs's verdict (which was "it parses").

const { isUtf8 } = require('buffer');

const STRING = 'string';

/**
 * A checker for the messages of `definition` (a proto-loader package definition) in
 * `packageName`: check(typeName, bytes) is false only when a string field, at any depth,
 * is not valid UTF-8.
 */
function utf8Checker(definition, packageName) {
  const plans = new Map(); // full type name -> Map(field number -> STRING or a type name)

  /** The fields worth a look in a message: strings, and messages (map entries included). */
  function planOf(typeName) {
    if (plans.has(typeName)) return plans.get(typeName);
    const plan = new Map();
    plans.set(typeName, plan); // before the fields: a recursive type finds itself
    const descriptor = descriptorOf(typeName);
    for (const field of descriptor ? descriptor.field : []) {
      if (field.type === 'TYPE_STRING') plan.set(field.number, STRING);
      else if (field.type === 'TYPE_MESSAGE') plan.set(field.number, resolve(typeName, field.typeName));
    }
    return plan;
  }

  /** A message's descriptor: a package type, or one nested in it (a map's entry type). */
  function descriptorOf(typeName) {
    const top = definition[typeName];
    if (top && top.type) return top.type;
    const dot = typeName.lastIndexOf('.');
    const outer = definition[typeName.slice(0, dot)];
    const inner = typeName.slice(dot + 1);
    return outer && outer.type ? outer.type.nestedType.find((nested) => nested.name === inner) : undefined;
  }

  /** A field's type name as a full name: nested in its message first, else in the package. */
  function resolve(typeName, fieldType) {
    if (fieldType.startsWith('.')) return fieldType.slice(1);
    const descriptor = descriptorOf(typeName);
    const nested = descriptor && descriptor.nestedType.some((inner) => inner.name === fieldType);
    return nested ? `${typeName}.${fieldType}` : `${packageName}.${fieldType}`;
  }

  return (typeName, bytes) => walk(planOf, typeName, new Cursor(bytes), bytes.length) !== BAD;
}

const BAD = -1; // a string field with bad UTF-8
const LOST = -2; // bytes the walk cannot follow: protobufjs parsed them, so not BAD

/** Whether bytes[start, stop) is UTF-8; ASCII (ids, config) without a native call. */
function validUtf8(bytes, start, stop) {
  for (let i = start; i < stop; i++) {
    if (bytes[i] >= 0x80) return isUtf8(bytes.subarray(start, stop));
  }
  return true;
}

/**
 * A cursor over wire bytes. Its varint reads return the value (-1 when the bytes end
 * first) and move `at`: no array per read, as this runs on every request.
 */
class Cursor {
  constructor(bytes) {
    this.bytes = bytes;
    this.at = 0;
  }

  varint(end) {
    const { bytes } = this;
    let value = 0;
    let scale = 1;
    for (let i = this.at; i < end && i < this.at + 10; i++) {
      value += (bytes[i] & 0x7f) * scale;
      if (bytes[i] < 0x80) {
        this.at = i + 1;
        return value;
      }
      scale *= 128;
    }
    return -1;
  }
}

/**
 * Walk one message (or group) up to `end` from the cursor; the position after it, BAD, or
 * LOST. `group` is the field number of an open group (wire type 3), which its end tag closes.
 */
function walk(planOf, typeName, cursor, end, group = null) {
  const plan = typeName === null ? EMPTY : planOf(typeName);
  while (cursor.at < end) {
    const tag = cursor.varint(end);
    if (tag < 0) return LOST;
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (wire === 0) {
      if (cursor.varint(end) < 0) return LOST;
    } else if (wire === 1) {
      cursor.at += 8;
    } else if (wire === 5) {
      cursor.at += 4;
    } else if (wire === 2) {
      const length = cursor.varint(end);
      const start = cursor.at;
      const stop = start + length;
      if (length < 0 || stop > end) return LOST;
      const kind = plan.get(field);
      if (kind === STRING) {
        if (!validUtf8(cursor.bytes, start, stop)) return BAD;
      } else if (kind !== undefined) {
        const inner = walk(planOf, kind, cursor, stop);
        if (inner === BAD || inner === LOST) return inner;
      }
      cursor.at = stop;
    } else if (wire === 3) {
      const after = walk(planOf, null, cursor, end, field); // an unknown group: skipped
      if (after === BAD || after === LOST) return after;
    } else if (wire === 4 && field === group) {
      return cursor.at;
    } else {
      return LOST;
    }
  }
  return group === null && cursor.at === end ? cursor.at : LOST;
}

const EMPTY = new Map();

module.exports = { utf8Checker };
