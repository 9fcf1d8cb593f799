'use strict';
// The one error type of a call: a gRPC status code and a message naming the field at fault.
// The server turns it into the call's status; anything else thrown becomes INTERNAL.

const { status } = require('@grpc/grpc-js');

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

/** The gRPC status object for any error: its own, or INTERNAL for a bug. */
function toStatus(err) {
  if (err instanceof SimulatorError) return { code: err.code, details: err.message };
  const name = err && err.name ? err.name : 'Error';
  const message = err && err.message !== undefined ? err.message : String(err);
  return { code: status.INTERNAL, details: `${name}: ${message}` };
}

module.exports = { SimulatorError, invalid, notFound, precondition, exhausted, internal, toStatus, status };
