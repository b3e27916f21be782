/**
 * @diocp/core's transport conformance suite, unchanged, against the native transport, with
 * the hooks core uses (real ProtocolError instances).
 */
import { nativeHooks } from '../../core/src/transport/select-transport.js';
import type { Transport } from '../../core/src/index.js';
import { transportConformance } from '../../core/test/transport/conformance.js';
import { createTransport } from '../src/index.js';

transportConformance('native', (options) => createTransport(options, nativeHooks) satisfies Transport);
