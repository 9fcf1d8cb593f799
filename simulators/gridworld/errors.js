'use strict';
// The one error type of a call: a gRPC status code and a message naming the field at fault.
// The server turns it into the call's status; anything else thrown becomes INTERNAL.
//
// A status message travels in an HTTP/2 trailer, and clients cap their headers at a few
// KiB: a message that echoed a huge client string (a 100,000-character session id) would
// not arrive as its status at all. So client strings are quoted through `quoted`, and
// every message is capped once more on its way out.

const { status } = require('@grpc/grpc-js');

const QUOTE_CHARS = 64; // the most of one client string a message repeats
const MAX_DETAILS_CHARS = 1024; // the backstop for a whole message (e.g. a bug's)

/** The first `limit` characters (code points, as Python counts them) of `text`, and its length. */
function head(text, limit) {
  if (text.length <= limit) return { head: text, length: text.length }; // code units >= code points
  let end = 0; // in code units: a cut never splits a surrogate pair (grpc-js cannot send one)
  let length = 0;
  for (const char of text) {
    if (length < limit) end += char.length;
    length += 1;
  }
  return { head: text.slice(0, end), length };
}

/**
 * A string as Python's repr writes it: single quotes, or double ones when it holds a '
 * and no "; backslashes, and every character Python does not print (controls, format
 * characters, separators but the space, unassigned ones), escaped the way Python does. So
 * a client's newline cannot forge a line of a log, and both servers quote alike (up to
 * the Unicode versions of their tables).
 */
function repr(text) {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  const escaped = text.replace(UNPRINTABLE, escape);
  return `${quote}${quote === "'" ? escaped.replace(/'/g, "\\'") : escaped}${quote}`;
}

const UNPRINTABLE = /[\\\p{C}\p{Z}]/gu; // the space is Zs too: escape() gives it back
const ESCAPES = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', ' ': ' ' };

function escape(char) {
  if (ESCAPES[char] !== undefined) return ESCAPES[char];
  const code = char.codePointAt(0);
  if (code < 0x100) return `\\x${code.toString(16).padStart(2, '0')}`;
  if (code < 0x10000) return `\\u${code.toString(16).padStart(4, '0')}`;
  return `\\U${code.toString(16).padStart(8, '0')}`;
}

/**
 * A client string as a message quotes it, as FLARE's Python server does: its repr, or for
 * a longer one the repr of its first 64 characters then how long it was:
 * 'abc...'...(100000 chars).
 */
function quoted(text) {
  const s = String(text);
  const { head: start, length } = head(s, QUOTE_CHARS);
  return length <= QUOTE_CHARS ? repr(s) : `${repr(start)}...(${length} chars)`;
}

/** A message cut to the backstop length (its last 20 characters left for the count). */
function capped(message) {
  const { length } = head(message, MAX_DETAILS_CHARS);
  if (length <= MAX_DETAILS_CHARS) return message;
  return `${head(message, MAX_DETAILS_CHARS - 20).head}... (${length} chars)`;
}

class SimulatorError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'SimulatorError';
    this.code = code;
  }

  /** The same error with `prefix` in front of its message (e.g. which StepMany row). */
  prefixed(prefix) {
    return new SimulatorError(this.code, `${prefix}${this.message}`);
  }
}

const invalid = (message) => new SimulatorError(status.INVALID_ARGUMENT, message);
const notFound = (message) => new SimulatorError(status.NOT_FOUND, message);
const precondition = (message) => new SimulatorError(status.FAILED_PRECONDITION, message);
const exhausted = (message) => new SimulatorError(status.RESOURCE_EXHAUSTED, message);
const internal = (message) => new SimulatorError(status.INTERNAL, message);
const cancelled = (message) => new SimulatorError(status.CANCELLED, message);

/** The gRPC status object for any error: its own, or INTERNAL for a bug. */
function toStatus(err) {
  if (err instanceof SimulatorError) return { code: err.code, details: capped(err.message) };
  const name = err && err.name ? err.name : 'Error';
  const message = err && err.message !== undefined ? err.message : String(err);
  return { code: status.INTERNAL, details: capped(`${name}: ${message}`) };
}

module.exports = {
  SimulatorError,
  invalid,
  notFound,
  precondition,
  exhausted,
  internal,
  cancelled,
  toStatus,
  quoted,
  capped,
  QUOTE_CHARS,
  status,
};
