'use strict';
// The repository's protos, loaded at run time from its protos/ directory (never a copy),
// so the server and the client always speak the contracts checked into the repository.

const path = require('path');

const protoLoader = require('@grpc/proto-loader');

const { DType } = require('./tensors');

const PROTO_ROOT = path.resolve(__dirname, '../../protos');
const SIMULATOR_PROTO = 'flare/simulator/v1/simulator.proto';
const LEARNER_PROTO = 'flare/learner/v1/learner.proto';
// int64 as strings: a seed may use all 64 bits, which a JS number cannot hold.
const LOADER_OPTIONS = { keepCase: true, longs: String, enums: Number, defaults: true, oneofs: true };

/**
 * A proto of the repository (e.g. SIMULATOR_PROTO), its imports found under protos/. Every
 * contract here uses flare.simulator.v1's tensors, so the DType numbers tensors.js
 * hard-codes (to stay gRPC-free) are checked against the loaded enum.
 */
function loadProto(file) {
  const definition = protoLoader.loadSync(file, { ...LOADER_OPTIONS, includeDirs: [PROTO_ROOT] });
  const dtype = definition['flare.simulator.v1.DType'];
  if (dtype === undefined) throw new Error(`${file}: flare.simulator.v1.DType is missing`);
  for (const { name, number } of dtype.type.value) {
    if (DType[name.replace(/^DTYPE_/, '')] !== number) {
      throw new Error(`${SIMULATOR_PROTO}: ${name} = ${number}, but tensors.js says otherwise`);
    }
  }
  return definition;
}

module.exports = { PROTO_ROOT, SIMULATOR_PROTO, LEARNER_PROTO, LOADER_OPTIONS, loadProto };
