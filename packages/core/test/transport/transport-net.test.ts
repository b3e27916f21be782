import { NetTransport } from '../../src/index.js';
import { transportConformance } from './conformance.js';

transportConformance('net', (options) => new NetTransport(options));
