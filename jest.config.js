/** One jest run over every package, so CI reads a single JSON result. */
/** @type {import('jest').Config} */
module.exports = {
  projects: ['<rootDir>/core', '<rootDir>/examples', '<rootDir>/test'],
};
