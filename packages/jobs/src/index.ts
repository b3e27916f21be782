// The public face of @diocp/jobs.
export { createJobPool, JobPool, type PostOptions } from './pool.js';
export { defineJob, isJobDefinition, type JobContext, type JobDefinition, type JobDefinitionOptions, type JobFunction } from './define-job.js';
export type { JobHandle, JobState } from './handle.js';
export { JobGroup, type GroupOptions, type Settled } from './group.js';
export type { ParallelForOptions, ParallelForResult } from './parallel-for.js';
export { jobPoolDefaults, resolveJobPoolOptions, type JobPoolOptions } from './options.js';
export type { JobStats, PoolStats } from './stats.js';
export { JobError, JobFailedError, jobError, jobErrorDefs, type JobErrorCode } from './errors.js';
