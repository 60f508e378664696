// Shared @swc/jest options: strip types only (tsc -b does the type-checking in the build).
module.exports = {
  jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
  module: { type: 'commonjs' },
  sourceMaps: 'inline',
};
