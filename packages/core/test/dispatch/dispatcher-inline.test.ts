import { InlineDispatcher } from '../../src/index.js';
import { dispatcherConformance } from './conformance.js';

dispatcherConformance('inline', () => new InlineDispatcher());
