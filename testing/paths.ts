/** Paths for tests and benchmarks: the repository root (the one definition is lib/util.ts). */
export { REPO_ROOT, repoPath } from '../lib/util.js';
