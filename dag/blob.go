package dag

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Spiller moves output bytes out of the process: to a local directory or
// Redis (package spill provides both; package dagrun adapts them). Keys are
// relative, e.g. "runs/<run-id>/out/<node-id>". Implementations must be safe
// for concurrent use, must make a blob visible only once Spill has returned
// successfully, and must return an error wrapping ErrBlobNotFound for a
// missing key.
type Spiller interface {
	Spill(ctx context.Context, key string, r io.Reader) (SpillStat, error)
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	Delete(ctx context.Context, key string) error
}

// ErrBlobNotFound is wrapped by Spiller errors for a missing blob.
var ErrBlobNotFound = errors.New("blob not found")

// SpillStat describes one spilled blob.
type SpillStat struct {
	Bytes      int64         `json:"bytes"`
	Compressed int64         `json:"compressed_bytes"`
	Duration   time.Duration `json:"duration_ns"`
}

// value is one node's output: reference-counted, held in memory as a list of
// chunks or spilled to a Spiller.
type value struct {
	r    *run
	node string
	kind Kind
	cols []string

	mu        sync.Mutex
	chunks    [][]byte // in-memory content, immutable once complete
	held      int64    // bytes of chunk capacity accounted to the run
	size      int64    // content bytes
	complete  bool
	spillKey  string // set once the content lives in the spiller
	spill     SpillStat
	spillDur  time.Duration
	refs      int
	readers   int
	freed     bool
	doneAt    time.Time
	freedAt   time.Time
	threshold int64
}

const (
	minChunk = 4 << 10
	maxChunk = 1 << 20
)

// chunkPool recycles full-size chunks of freed outputs so that a chain of
// large outputs reuses memory instead of growing the heap until the next GC.
type chunkPool struct {
	mu    sync.Mutex
	free  [][]byte
	limit int
}

func (p *chunkPool) get(n int) []byte {
	if n == maxChunk {
		p.mu.Lock()
		if k := len(p.free); k > 0 {
			c := p.free[k-1]
			p.free = p.free[:k-1]
			p.mu.Unlock()
			return c[:0]
		}
		p.mu.Unlock()
	}
	return make([]byte, 0, n)
}

func (p *chunkPool) put(chunks [][]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range chunks {
		if cap(c) == maxChunk && len(p.free) < p.limit {
			p.free = append(p.free, c)
		}
	}
}

// blobWriter appends to a value, moving to the spiller once the content
// passes the threshold.
type blobWriter struct {
	v       *value
	ctx     context.Context
	pw      *io.PipeWriter
	result  chan spillResult
	spilled int64
	start   time.Time
	closed  bool
}

type spillResult struct {
	stat SpillStat
	err  error
}

func (v *value) writer() *blobWriter {
	return &blobWriter{v: v, ctx: v.r.ctx}
}

func (w *blobWriter) Write(p []byte) (int, error) {
	v := w.v
	if w.pw != nil {
		n, err := w.pw.Write(p)
		w.spilled += int64(n)
		v.mu.Lock()
		v.size += int64(n)
		v.mu.Unlock()
		return n, err
	}
	n := len(p)
	for len(p) > 0 {
		v.mu.Lock()
		var last []byte
		if k := len(v.chunks); k > 0 {
			last = v.chunks[k-1]
		}
		if last == nil || len(last) == cap(last) {
			size := minChunk
			if last != nil {
				size = min(cap(last)*2, maxChunk)
			}
			last = v.r.pool.get(size)
			v.chunks = append(v.chunks, last)
		}
		k := min(cap(last)-len(last), len(p))
		last = append(last, p[:k]...)
		v.chunks[len(v.chunks)-1] = last
		v.size += int64(k)
		v.held += int64(k)
		p = p[k:]
		over := v.r.spiller != nil && v.threshold > 0 && v.size > v.threshold
		v.mu.Unlock()
		v.r.acct.add(int64(k))
		if over {
			if err := w.startSpill(); err != nil {
				return n - len(p), err
			}
			if len(p) > 0 {
				m, err := w.Write(p)
				return n - len(p) + m, err
			}
			return n, nil
		}
	}
	return n, nil
}

// startSpill moves the buffered chunks into a streaming Spill call; later
// writes go straight to it.
func (w *blobWriter) startSpill() error {
	v := w.v
	pr, pw := io.Pipe()
	w.pw, w.result, w.start = pw, make(chan spillResult, 1), time.Now()
	key := v.r.outputKey(v.node)
	v.r.wg.Add(1)
	go func() {
		defer v.r.wg.Done()
		st, err := v.r.spiller.Spill(w.ctx, key, pr)
		pr.CloseWithError(err)
		w.result <- spillResult{st, err}
	}()
	v.mu.Lock()
	chunks := v.chunks
	v.chunks = nil
	v.spillKey = key
	held := v.held
	v.held = 0
	v.mu.Unlock()
	for _, c := range chunks {
		if _, err := pw.Write(c); err != nil {
			return fmt.Errorf("spill %s: %w", key, err)
		}
		w.spilled += int64(len(c))
	}
	v.r.pool.put(chunks)
	v.r.acct.add(-held)
	return nil
}

func (w *blobWriter) close(ctx context.Context) error {
	if w.closed {
		return nil
	}
	w.closed = true
	v := w.v
	if w.pw != nil {
		w.pw.Close()
		res := <-w.result
		if res.err != nil {
			return fmt.Errorf("spill output of %q to %s: %w", v.node, v.spillKey, res.err)
		}
		v.mu.Lock()
		v.spill = res.stat
		v.spillDur = time.Since(w.start)
		v.mu.Unlock()
		v.r.emit(Event{Type: EventSpilled, Node: v.node, Bytes: res.stat.Bytes, Key: v.spillKey})
	}
	return nil
}

func (w *blobWriter) abort(err error) {
	if w.closed {
		return
	}
	w.closed = true
	if w.pw != nil {
		w.pw.CloseWithError(fmt.Errorf("attempt failed: %w", err))
		<-w.result
		_ = w.v.r.spiller.Delete(context.WithoutCancel(w.ctx), w.v.spillKey)
	}
	w.v.release()
}

// open returns a reader over the complete value.
func (v *value) open(ctx context.Context) (io.ReadCloser, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.freed {
		return nil, fmt.Errorf("output of %q already freed", v.node)
	}
	if v.spillKey != "" && v.chunks == nil {
		rc, err := v.r.spiller.Open(ctx, v.spillKey)
		if err != nil {
			return nil, fmt.Errorf("read spilled output of %q: %w", v.node, err)
		}
		return rc, nil
	}
	v.readers++
	return &chunkReader{v: v, chunks: v.chunks}, nil
}

type chunkReader struct {
	v      *value
	chunks [][]byte
	off    int
	closed bool
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.chunks) > 0 && c.off == len(c.chunks[0]) {
		c.chunks, c.off = c.chunks[1:], 0
	}
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0][c.off:])
	c.off += n
	return n, nil
}

func (c *chunkReader) Close() error {
	if !c.closed {
		c.closed = true
		c.chunks = nil
		c.v.mu.Lock()
		c.v.readers--
		c.v.mu.Unlock()
	}
	return nil
}

// release drops the value's memory and blob. It is called when the last
// reference goes (or at the end of a --no-evict run). A durable run keeps
// blobs until the run has succeeded, so that a crash or a suspension can
// resume from them.
func (v *value) release() {
	v.mu.Lock()
	if v.freed {
		v.mu.Unlock()
		return
	}
	v.freed = true
	v.freedAt = time.Now()
	chunks, held, key, readers := v.chunks, v.held, v.spillKey, v.readers
	v.chunks, v.held = nil, 0
	v.mu.Unlock()
	if readers == 0 {
		v.r.pool.put(chunks)
	}
	v.r.acct.add(-held)
	if key != "" && !v.r.cfg.Durable {
		if err := v.r.spiller.Delete(context.WithoutCancel(v.r.ctx), key); err != nil {
			v.r.log.Warn("delete spilled output", "node_id", v.node, "key", key, "err", err)
		}
	}
}

// spillNow moves a complete in-memory value to the spiller (memory
// pressure). It returns the bytes of memory freed.
func (v *value) spillNow(ctx context.Context) (int64, error) {
	v.mu.Lock()
	if v.freed || !v.complete || v.chunks == nil || v.readers > 0 || v.spillKey != "" {
		v.mu.Unlock()
		return 0, nil
	}
	chunks := v.chunks
	key := v.r.outputKey(v.node)
	v.mu.Unlock()
	start := time.Now()
	st, err := v.r.spiller.Spill(ctx, key, &chunkReader{v: &value{}, chunks: chunks})
	if err != nil {
		return 0, fmt.Errorf("spill output of %q under pressure: %w", v.node, err)
	}
	v.mu.Lock()
	if v.freed || v.readers > 0 {
		v.mu.Unlock()
		_ = v.r.spiller.Delete(ctx, key)
		return 0, nil
	}
	held := v.held
	v.chunks, v.held, v.spillKey, v.spill, v.spillDur = nil, 0, key, st, time.Since(start)
	v.mu.Unlock()
	v.r.pool.put(chunks)
	v.r.acct.add(-held)
	v.r.emit(Event{Type: EventSpilled, Node: v.node, Bytes: st.Bytes, Key: key})
	return held, nil
}
