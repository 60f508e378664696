/** One jest run over every package, so CI reads a single JSON result. */
/** @type {import('jest').Config} */
module.exports = {
  projects: ['<rootDir>/core', '<rootDir>/plugins/mptcp', '<rootDir>/examples', '<rootDir>/test'],
};
