// Package subproc holds the benchmarks of the subproc package: the
// document-generation node.js script over a generated table, with the child's
// peak memory, under each enforcement mode. See RESULTS.md.
package subproc
