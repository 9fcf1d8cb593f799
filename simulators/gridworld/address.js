'use strict';
// HOST:PORT addresses, and the rule both modes follow: this simulator has no TLS, so an
// address beyond loopback needs --insecure (a trusted network).

/** `address` split into host and port; anything else is an Error naming `flag`. */
function splitAddress(address, flag) {
  const colon = address.lastIndexOf(':');
  if (colon <= 0 || !/^\d+$/.test(address.slice(colon + 1))) {
    throw new Error(`${flag}: '${address}' is not HOST:PORT`);
  }
  return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
}

/** Whether a host is this machine only (no TLS here, so anything else needs --insecure). */
function isLoopback(host) {
  const bare = host.replace(/^\[|\]$/g, '');
  return bare === 'localhost' || bare === '::1' || /^127\.\d+\.\d+\.\d+$/.test(bare);
}

/** Exit with status 2 and `message` when `host` is beyond loopback without --insecure
 * (neither the server nor the client has TLS). */
function refuseUntrusted(host, insecure, message) {
  if (isLoopback(host) || insecure) return;
  process.stderr.write(message);
  process.exit(2);
}

module.exports = { splitAddress, isLoopback, refuseUntrusted };
