package dag

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// ErrStopped is returned by RowWriter.Write when every consumer of a piped
// table has stopped reading (for example table.head has its rows). A node
// that sees it should stop producing and return it or nil: the executor
// treats it as success.
var ErrStopped = errors.New("consumer stopped reading")

// ErrWrongKind is returned when an input is read as a kind it is not.
var ErrWrongKind = errors.New("wrong input kind")

// Inputs are a node's upstream outputs, in the order of the node's "inputs".
type Inputs struct {
	list []*Input
}

// Len returns the number of inputs.
func (in *Inputs) Len() int { return len(in.list) }

// At returns input i.
func (in *Inputs) At(i int) *Input { return in.list[i] }

// All returns every input.
func (in *Inputs) All() []*Input { return in.list }

// ByID returns the input produced by the node with the given id.
func (in *Inputs) ByID(id string) (*Input, bool) {
	for _, i := range in.list {
		if i.v.node == id {
			return i, true
		}
	}
	return nil, false
}

// Input is one upstream output as seen by one consumer. Each Open or Rows
// call returns a fresh reader, except for a piped table, which can be read
// once.
type Input struct {
	v    *value
	pipe *pipe
}

// NodeID returns the id of the node that produced the input.
func (i *Input) NodeID() string { return i.v.node }

// Kind returns the kind of the input.
func (i *Input) Kind() Kind { return i.v.kind }

// Piped reports whether the input streams from a running producer
// (readable once, never materialised): a table, or bytes such as a prompt.
func (i *Input) Piped() bool { return i.pipe != nil }

// Size returns the input's size in bytes (its encoded size for tables), or
// -1 while it is piped.
func (i *Input) Size() int64 {
	if i.pipe != nil {
		return -1
	}
	return i.v.size
}

// Columns returns a table input's column names (waiting for a piped
// producer to declare them).
func (i *Input) Columns(ctx context.Context) ([]string, error) {
	if i.pipe != nil {
		return i.pipe.columns(ctx)
	}
	if i.v.kind != KindTable {
		return nil, fmt.Errorf("input %q is %s: %w", i.v.node, i.v.kind, ErrWrongKind)
	}
	return i.v.cols, nil
}

// Rows returns a reader over a table input.
func (i *Input) Rows(ctx context.Context) (RowReader, error) {
	if i.pipe != nil {
		return i.pipe.reader(ctx)
	}
	if i.v.kind != KindTable {
		return nil, fmt.Errorf("input %q is %s, not a table: %w", i.v.node, i.v.kind, ErrWrongKind)
	}
	rc, err := i.v.open(ctx)
	if err != nil {
		return nil, err
	}
	d, err := newTableDecoder(rc)
	if err != nil {
		return nil, fmt.Errorf("input %q: %w", i.v.node, err)
	}
	return d, nil
}

// Open returns the input's bytes. A table is rendered as JSON lines, one
// object per row keyed by column name.
func (i *Input) Open(ctx context.Context) (io.ReadCloser, error) {
	if i.pipe != nil && i.pipe.bytes {
		return i.pipe.open()
	}
	if i.pipe != nil || i.v.kind == KindTable {
		rr, err := i.Rows(ctx)
		if err != nil {
			return nil, err
		}
		return jsonLines(ctx, rr), nil
	}
	return i.v.open(ctx)
}

// Decode decodes a JSON (or bytes holding JSON) input into v.
func (i *Input) Decode(ctx context.Context, v any) error {
	rc, err := i.Open(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := json.NewDecoder(rc).Decode(v); err != nil {
		return fmt.Errorf("input %q: decode JSON: %w", i.v.node, err)
	}
	return nil
}

// jsonLines renders rows as JSON lines through a pipe.
func jsonLines(ctx context.Context, rr RowReader) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		defer rr.Close()
		cols := rr.Columns()
		enc := json.NewEncoder(pw)
		for {
			r, err := rr.Next(ctx)
			if err == io.EOF {
				pw.Close()
				return
			}
			if err == nil {
				err = enc.Encode(RowMap(cols, r))
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()
	return &drainCloser{pr}
}

// drainCloser closes the read side of a pipe so the writer goroutine ends.
type drainCloser struct{ *io.PipeReader }

func (d *drainCloser) Close() error { return d.PipeReader.CloseWithError(ErrStopped) }

// Output is where a node writes its result. A node writes exactly one of:
// bytes through Writer, one JSON value through WriteJSON, or a table through
// Table. An Output is not safe for concurrent use.
type Output struct {
	v     *value
	pipe  *pipe // non-nil when the table is piped to its single consumer
	w     *blobWriter
	tw    *tableWriter
	kind  Kind
	typeK Kind
}

// NodeID returns the id of the node writing the output.
func (o *Output) NodeID() string { return o.v.node }

func (o *Output) setKind(k Kind) error {
	if o.kind != KindAny && o.kind != k {
		return fmt.Errorf("output of %q already written as %s, cannot write %s", o.v.node, o.kind, k)
	}
	if o.typeK != KindAny && o.typeK != k {
		return fmt.Errorf("node type of %q declares %s output, cannot write %s", o.v.node, o.typeK, k)
	}
	if o.pipe != nil && k != o.pipe.kind() {
		return fmt.Errorf("output of %q is piped as %s, cannot write %s", o.v.node, o.pipe.kind(), k)
	}
	o.kind = k
	return nil
}

// Writer returns a writer for a bytes output. Bytes are accounted as they
// arrive and spilled once they pass the spill threshold.
func (o *Output) Writer() (io.Writer, error) {
	if err := o.setKind(KindBytes); err != nil {
		return nil, err
	}
	if o.pipe != nil {
		return pipeWriter{o}, nil
	}
	if o.w == nil {
		o.w = o.v.writer()
	}
	return o.w, nil
}

// pipeWriter writes a bytes output straight to its single streaming
// consumer, counting the bytes for the report.
type pipeWriter struct{ o *Output }

func (w pipeWriter) Write(p []byte) (int, error) {
	n, err := w.o.pipe.bw.Write(p)
	w.o.v.mu.Lock()
	w.o.v.size += int64(n)
	w.o.v.mu.Unlock()
	return n, err
}

// Write writes p to a bytes output (Output implements io.Writer).
func (o *Output) Write(p []byte) (int, error) {
	w, err := o.Writer()
	if err != nil {
		return 0, err
	}
	return w.Write(p)
}

// WriteJSON sets a JSON output to the encoding of v.
func (o *Output) WriteJSON(v any) error {
	if err := o.setKind(KindJSON); err != nil {
		return err
	}
	if o.w != nil {
		return fmt.Errorf("output of %q: WriteJSON called twice", o.v.node)
	}
	o.w = o.v.writer()
	return json.NewEncoder(o.w).Encode(v)
}

// Table starts a table output with the given columns and returns its row
// writer.
func (o *Output) Table(columns []string) (RowWriter, error) {
	if err := o.setKind(KindTable); err != nil {
		return nil, err
	}
	if o.tw != nil {
		return nil, fmt.Errorf("output of %q: Table called twice", o.v.node)
	}
	cols := append([]string(nil), columns...)
	o.v.cols = cols
	if o.pipe != nil {
		o.pipe.setColumns(cols)
		o.tw = &tableWriter{pipe: o.pipe}
		return o.tw, nil
	}
	o.w = o.v.writer()
	o.tw = &tableWriter{w: o.w, buf: encodeHeader(nil, cols)}
	return o.tw, nil
}

// finish completes the output after a successful run.
func (o *Output) finish(ctx context.Context) error {
	if o.tw != nil {
		if err := o.tw.flush(ctx); err != nil {
			return err
		}
	}
	if o.pipe != nil {
		if o.tw == nil && !o.pipe.bytes {
			o.pipe.fail(fmt.Errorf("node %q finished without writing a table", o.v.node))
			return fmt.Errorf("node of type declaring a table output wrote no table")
		}
		o.pipe.close(nil)
		return nil
	}
	o.v.kind = o.kind
	if o.kind == KindAny {
		o.v.kind = KindBytes
		if o.typeK != KindAny {
			o.v.kind = o.typeK
		}
		if o.v.kind == KindTable {
			o.v.cols = nil
			o.w = o.v.writer()
			if _, err := o.w.Write(encodeHeader(nil, nil)); err != nil {
				return err
			}
		}
	}
	if o.w == nil {
		o.w = o.v.writer()
	}
	return o.w.close(ctx)
}

// abort discards a failed attempt's output.
func (o *Output) abort(err error) {
	if o.pipe != nil {
		o.pipe.fail(err)
	}
	if o.w != nil {
		o.w.abort(err)
	}
}

type tableWriter struct {
	w     *blobWriter
	pipe  *pipe
	buf   []byte
	batch []Row
	bsize int64
}

const (
	tableFlushBytes = 64 << 10
	pipeBatchRows   = 256
	pipeBatchBytes  = 256 << 10
)

func (t *tableWriter) Write(ctx context.Context, r Row) error {
	if t.pipe != nil {
		t.batch = append(t.batch, r)
		t.bsize += rowSize(r)
		if len(t.batch) >= pipeBatchRows || t.bsize >= pipeBatchBytes {
			return t.flush(ctx)
		}
		return nil
	}
	var err error
	if t.buf, err = encodeRow(t.buf, r); err != nil {
		return err
	}
	if len(t.buf) >= tableFlushBytes {
		return t.flush(ctx)
	}
	return nil
}

func (t *tableWriter) flush(ctx context.Context) error {
	if t.pipe != nil {
		if len(t.batch) == 0 {
			return nil
		}
		b, n := t.batch, t.bsize
		t.batch, t.bsize = nil, 0
		return t.pipe.send(ctx, b, n)
	}
	if len(t.buf) == 0 {
		return nil
	}
	_, err := t.w.Write(t.buf)
	t.buf = t.buf[:0]
	return err
}

// pipe carries a table from a running producer to its single streaming
// consumer through a bounded channel: the producer blocks when the consumer
// falls behind (back-pressure), and the table is never materialised.
type pipe struct {
	// bytes pipes carry a bytes output through a synchronous io.Pipe: the
	// producer's Write returns when the consumer has read the bytes.
	bytes    bool
	br       *io.PipeReader
	bw       *io.PipeWriter
	acct     *accountant
	ch       chan rowBatch
	colsSet  chan struct{}
	stopped  chan struct{}
	stopOnce sync.Once
	cols     []string
	mu       sync.Mutex
	err      error
	closed   bool
	taken    bool
	rows     int64
}

type rowBatch struct {
	rows []Row
	size int64
}

const pipeDepth = 4

func newPipe(acct *accountant, kind Kind) *pipe {
	p := &pipe{acct: acct, ch: make(chan rowBatch, pipeDepth), colsSet: make(chan struct{}), stopped: make(chan struct{})}
	if kind == KindBytes {
		p.bytes = true
		p.br, p.bw = io.Pipe()
	}
	return p
}

func (p *pipe) kind() Kind {
	if p.bytes {
		return KindBytes
	}
	return KindTable
}

// open returns the consumer's end of a bytes pipe (once).
func (p *pipe) open() (io.ReadCloser, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.taken {
		return nil, errors.New("piped input can be read only once")
	}
	p.taken = true
	return pipeReadCloser{p}, nil
}

type pipeReadCloser struct{ p *pipe }

func (r pipeReadCloser) Read(b []byte) (int, error) { return r.p.br.Read(b) }
func (r pipeReadCloser) Close() error               { r.p.stop(); return nil }

func (p *pipe) setColumns(cols []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cols == nil {
		p.cols = cols
		close(p.colsSet)
	}
}

func (p *pipe) columns(ctx context.Context) ([]string, error) {
	if p.bytes {
		return nil, fmt.Errorf("piped input is bytes, not a table: %w", ErrWrongKind)
	}
	select {
	case <-p.colsSet:
		return p.cols, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

func (p *pipe) send(ctx context.Context, rows []Row, size int64) error {
	p.acct.add(size)
	select {
	case p.ch <- rowBatch{rows, size}:
		return nil
	case <-p.stopped:
		p.acct.add(-size)
		return ErrStopped
	case <-ctx.Done():
		p.acct.add(-size)
		return context.Cause(ctx)
	}
}

// close ends the stream; err (if any) reaches the consumer after the rows.
func (p *pipe) close(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	p.err = err
	if p.bytes {
		if err != nil {
			err = fmt.Errorf("%w: %v", ErrUpstreamFailed, err)
		}
		p.bw.CloseWithError(err)
	}
	if p.cols == nil {
		p.cols = []string{}
		close(p.colsSet)
	}
	close(p.ch)
}

func (p *pipe) fail(err error) { p.close(err) }

// stop is called by the consumer side: no more rows are wanted. The
// producer's next send returns ErrStopped; batches already queued are
// dropped by drain once the producer is done.
func (p *pipe) stop() {
	p.stopOnce.Do(func() {
		close(p.stopped)
		if p.bytes {
			p.br.CloseWithError(ErrStopped)
		}
	})
	p.drain(false)
}

// drain discards queued batches; with wait it reads until the producer
// closes the channel.
func (p *pipe) drain(wait bool) {
	for {
		if wait {
			b, ok := <-p.ch
			if !ok {
				return
			}
			p.acct.add(-b.size)
			continue
		}
		select {
		case b, ok := <-p.ch:
			if !ok {
				return
			}
			p.acct.add(-b.size)
		default:
			return
		}
	}
}

func (p *pipe) reader(ctx context.Context) (RowReader, error) {
	if p.bytes {
		return nil, fmt.Errorf("piped input is bytes, not a table: %w", ErrWrongKind)
	}
	p.mu.Lock()
	if p.taken {
		p.mu.Unlock()
		return nil, errors.New("piped table input can be read only once")
	}
	p.taken = true
	p.mu.Unlock()
	if _, err := p.columns(ctx); err != nil {
		return nil, err
	}
	return &pipeReader{p: p}, nil
}

type pipeReader struct {
	p      *pipe
	cur    []Row
	done   bool
	closed bool
}

func (r *pipeReader) Columns() []string { return r.p.cols }

func (r *pipeReader) Next(ctx context.Context) (Row, error) {
	for len(r.cur) == 0 {
		if r.done {
			return nil, io.EOF
		}
		select {
		case b, ok := <-r.p.ch:
			if !ok {
				r.done = true
				r.p.mu.Lock()
				err := r.p.err
				r.p.mu.Unlock()
				if err != nil {
					return nil, fmt.Errorf("%w: %v", ErrUpstreamFailed, err)
				}
				return nil, io.EOF
			}
			r.p.acct.add(-b.size)
			r.p.rows += int64(len(b.rows))
			r.cur = b.rows
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	row := r.cur[0]
	r.cur = r.cur[1:]
	return row, nil
}

func (r *pipeReader) Close() error {
	if !r.closed {
		r.closed = true
		r.p.stop()
	}
	return nil
}

// accountant tracks live output bytes and their peak.
type accountant struct {
	mu     sync.Mutex
	live   int64
	peak   int64
	shared *atomic.Int64 // Config.LiveBytes
}

func (a *accountant) add(n int64) {
	if a.shared != nil {
		a.shared.Add(n)
	}
	a.mu.Lock()
	a.live += n
	if a.live > a.peak {
		a.peak = a.live
	}
	a.mu.Unlock()
}

func (a *accountant) get() (live, peak int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.live, a.peak
}
