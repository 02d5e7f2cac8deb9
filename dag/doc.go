// Package dag is dagrun's executor: it validates workflows (DAGs of typed
// nodes written in JSON) and runs them concurrently in dependency order with
// bounded parallelism, context cancellation, per-node timeouts and retries
// with backoff. It knows no file formats and no Redis: node types are
// registered by name (package nodes has the built-in ones) and spilling goes
// through the small Spiller interface.
//
// # Output ownership and lifecycle
//
// Every node writes one output: bytes, a JSON value, or a table (a stream of
// rows). An output is reference-counted: it starts with one reference per
// consuming edge, plus one if it is a result of the workflow. Each consumer
// releases its references exactly once when it is done with them, whether it
// succeeded, failed, timed out, was cancelled or was skipped because an
// upstream node failed. The last release frees the output: its memory is
// dropped at once and its spilled blob, if any, is deleted. Result outputs
// are freed by Result.Close. Config.NoEvict holds everything until the run
// ends instead, to measure the difference.
//
// A table whose only consumer streams its input (Type.StreamsInput) is not
// stored at all: producer and consumer run together, joined by a bounded
// pipe with back-pressure, so the table is never materialised. A table with
// several consumers is materialised once, in a compact row encoding, and
// each consumer reads it with its own reader.
//
// Live output bytes are accounted exactly at every write and free; the
// Report gives the peak, with the sampled peaks of Go heap and process RSS,
// and per node the bytes output, how long they were held, heap growth while
// the node ran, and spill figures.
//
// # Spilling, pressure, durable runs
//
// With a Spiller, an output growing past its spill threshold streams to the
// spiller as it is written; a consumer reads it back as a stream. Values
// sent on Config.Pressure spill the largest complete in-memory outputs. A
// Durable run persists every completed output and a record of completed
// nodes, so that running the same RunID with Resume after a crash (or a
// suspension, see ErrSuspended) skips the nodes whose outputs are intact.
//
// # Concurrency
//
// A Registry and an Executor are safe for concurrent use; each Run is
// independent and returns only after every goroutine it started has ended.
// Inputs, Outputs and RowReaders belong to the node that received them.
package dag
