// Package spill moves large node outputs out of a worker's heap into a store
// that survives the worker: Redis (single node, Sentinel or Cluster) or a
// local directory.
//
// # Model
//
// A Store holds blobs under relative keys such as "runs/<run-id>/<node-id>".
// Put streams a blob in, Get streams it back out, Delete removes it, and a
// missing blob is reported as ErrNotFound. Every store applies its own
// namespace (a prefix) and a TTL, so tenants and runs cannot collide and
// abandoned runs expire.
//
// # Format
//
// Put compresses the stream with zstd while it is produced and cuts the
// compressed bytes into fixed-size chunks (1 MiB by default). Chunks are
// handed to a writer goroutine as they fill, so compression and I/O overlap
// and at most a few chunks are in memory at once, whatever the blob's size.
// A manifest records the raw size, compressed size, chunk size, chunk count,
// codec, a CRC-32C per chunk and an xxhash64 of the whole raw stream. The
// manifest is written last (Redis) or the file is renamed into place
// (directory): a blob is visible only when complete, and a partial blob is
// never valid.
//
// Get reads the manifest, then fetches chunks with bounded read-ahead,
// verifies every chunk's checksum before decompressing it, decodes with a
// memory-bounded zstd decoder and checks the whole-stream checksum and size
// at the end. A reader therefore never returns io.EOF after wrong or
// truncated data: it returns an error naming the key and the chunk.
//
// # Ownership and lifecycle
//
// Stores are safe for concurrent use by many goroutines. The io.ReadCloser
// returned by Get is for one goroutine and must be closed: Close stops its
// read-ahead goroutine and releases its decoder. A store must be closed
// when no longer used; closing a RedisStore never closes a redis client
// that was handed to NewRedis (the caller owns it), only one that Open
// created itself.
//
// # Errors
//
// ErrNotFound, ErrInvalidKey, ErrCorrupt, ErrChunkMissing, ErrUnavailable
// and ErrFull are sentinels to branch on with errors.Is; failures about one
// blob come as a *BlobError carrying the key, the operation and the chunk
// index. Transient network errors are retried a bounded number of times.
package spill
