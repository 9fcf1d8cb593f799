'use strict';
// wire.js: a string field that is not UTF-8 makes a request unparseable (as in Python's
// protobuf); bytes fields, unknown fields and everything else protobufjs accepts do not.

const assert = require('node:assert/strict');
const { test } = require('node:test');

const { utf8Checker } = require('../wire');
const { SIMULATOR, definition } = require('./support');

const PACKAGE = 'flare.simulator.v1';
const check = utf8Checker(definition, PACKAGE);
const BAD = Buffer.from([0xff, 0xfe]); // never UTF-8
const MARK = '~~~~'; // four bytes no other part of these requests holds; its first two become BAD

/** The serialized request of `method` with every MARK in its strings made bad UTF-8. */
function spoiled(method, request) {
  const bytes = SIMULATOR[method].requestSerialize(request);
  const at = bytes.indexOf(Buffer.from(MARK));
  assert.ok(at >= 0, 'the mark is in the bytes');
  BAD.copy(bytes, at);
  return bytes;
}

const tensor = (strings) => ({ dtype: 7, shape: [strings.length], strings });
const typeOf = (method) => `${PACKAGE}.${SIMULATOR[method].requestType.type.name}`;

test('well-formed requests of every method pass, bytes fields whatever they hold', () => {
  const data = { dtype: 5, shape: [2], data: BAD }; // bytes: anything goes
  const requests = {
    OpenSession: { protocol_version: 1, config: { level: '2', 'ключ': 'значение 😀' }, seed: '-1' },
    CloseSession: { session_id: 'abc' },
    GetSpec: { session_id: 'abc' },
    Reset: { session_id: '' },
    Step: { session_id: 'abc', actions: { action: data, words: tensor(['go', 'naïve']) }, actrep: 2 },
    StepMany: { session_ids: ['a', 'b'], actions: { action: data }, auto_reset: true },
    StepManyStream: { session_ids: ['a'], actions: {} },
    Session: { step: { session_id: 'é', actions: { action: data } } },
  };
  for (const [method, request] of Object.entries(requests)) {
    assert.equal(check(typeOf(method), SIMULATOR[method].requestSerialize(request)), true, method);
  }
  assert.equal(check(typeOf('Reset'), Buffer.alloc(0)), true);
});

test('bad UTF-8 in any string field, at any depth, is caught', () => {
  const cases = [
    ['Reset', { session_id: `x${MARK}` }],
    ['OpenSession', { protocol_version: 1, config: { [`k${MARK}`]: 'v' } }], // a map key
    ['OpenSession', { protocol_version: 1, config: { level: `${MARK}` } }], // a map value
    ['Step', { session_id: 'abc', actions: { [MARK]: tensor([]) } }],
    ['Step', { session_id: 'abc', actions: { words: tensor(['ok', MARK]) } }], // Tensor.strings
    ['StepMany', { session_ids: ['fine', MARK], actions: {} }],
    ['Session', { step: { session_id: MARK } }],
    ['Session', { open: { protocol_version: 1, config: { level: MARK } } }],
  ];
  for (const [method, request] of cases) {
    assert.equal(check(typeOf(method), spoiled(method, request)), false, `${method} ${JSON.stringify(request)}`);
  }
});

test('unknown fields are skipped, groups included; what cannot be followed is not called bad', () => {
  const reset = SIMULATOR.Reset.requestSerialize({ session_id: 'abc' });
  const unknownBytes = Buffer.from([0x7a, 0x02, 0xff, 0xfe]); // field 15, length-delimited, not UTF-8
  const group = Buffer.from([0x7b, 0x08, 0x01, 0x7c]); // field 15: start group, a varint, end group
  assert.equal(check(typeOf('Reset'), Buffer.concat([reset, unknownBytes, group])), true);
  assert.equal(check(typeOf('Reset'), Buffer.concat([group, Buffer.from([0x0a, 0x02]), BAD])), false);
  assert.equal(check(typeOf('Reset'), Buffer.from([0x0a, 0x09, 0x61])), true); // truncated: protobufjs's to refuse
});
