'use strict';
// Status messages stay small whatever the client sent: a status travels in a trailer.

const assert = require('node:assert/strict');
const { test } = require('node:test');

const { status } = require('@grpc/grpc-js');
const { quoted, toStatus, invalid } = require('../errors');

test('quoted: at most 64 characters, then how many there were', () => {
  assert.equal(quoted('abc'), "'abc'");
  assert.equal(quoted('a'.repeat(64)), `'${'a'.repeat(64)}'`);
  assert.equal(quoted('a'.repeat(65)), `'${'a'.repeat(64)}'...(65 chars)`);
  assert.equal(quoted('é'.repeat(100)), `'${'é'.repeat(64)}'...(100 chars)`);
  assert.equal(quoted(''), "''");
});

test("quoted writes what Python's repr writes: quotes, escapes, the unprintable", () => {
  const cases = [
    ["it's", `"it's"`],
    ['say "hi"', `'say "hi"'`],
    [`both ' "`, `'both \\' "'`],
    ['a\\b', `'a\\\\b'`],
    ['two\nlines\r\t', `'two\\nlines\\r\\t'`],
    ['\u0000\u007f\u0085\u00a0\u00ad', `'\\x00\\x7f\\x85\\xa0\\xad'`],
    ['a b\u200b\u2028\u3000', `'a b\\u200b\\u2028\\u3000'`],
    ['\u{f0000}', `'\\U000f0000'`],
    ['ñé😀', `'ñé😀'`],
  ];
  for (const [text, expected] of cases) assert.equal(quoted(text), expected, JSON.stringify(text));
  assert.equal(quoted(`'${'q'.repeat(70)}`), `"'${'q'.repeat(63)}"...(71 chars)`); // the cut, then repr
});

test('every status message is capped, a bug\'s included', () => {
  const bug = toStatus(new TypeError('y'.repeat(5000)));
  assert.equal(bug.code, status.INTERNAL);
  assert.ok(bug.details.startsWith('TypeError: yyy'));
  assert.ok(bug.details.endsWith('... (5011 chars)'));
  assert.ok(bug.details.length <= 1024);
  assert.equal(toStatus(invalid('short')).details, 'short');
});
