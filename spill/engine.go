package spill

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"
)

const (
	// smallMax is the largest blob written and read in one piece, without
	// a streaming encoder, decoder or goroutine.
	smallMax = 64 << 10
	// encoderWindow is the zstd window of streamed blobs.
	encoderWindow = 1 << 20
	// writeQueue is how many full chunks may wait for the writer goroutine.
	writeQueue = 2
	// cleanupTimeout bounds best-effort cleanup after a failed Put.
	cleanupTimeout = 5 * time.Second
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// chunkSink receives one blob's chunks in order, then the manifest.
type chunkSink interface {
	// writeChunk stores chunk i; b is only valid during the call.
	writeChunk(ctx context.Context, i int, b []byte) error
	// commit makes the blob visible.
	commit(ctx context.Context, m *manifest) error
	// putSmall stores a whole blob of few chunks and its manifest at once.
	putSmall(ctx context.Context, chunks [][]byte, m *manifest) error
	// abort removes whatever was written; best effort.
	abort(ctx context.Context)
}

// chunkSource reads one blob's chunks.
type chunkSource interface {
	// readChunk returns chunk i, which has length n; it may use buf.
	readChunk(ctx context.Context, i, n int, buf []byte) ([]byte, error)
	close() error
}

// engine is the codec shared by every store: compression, chunking,
// checksums and verification.
type engine struct {
	cfg      Config
	small    *zstd.Encoder // EncodeAll only; safe for concurrent use
	smallDec *zstd.Decoder // DecodeAll only; safe for concurrent use
	encLevel zstd.EncoderLevel
	encoders chan *zstd.Encoder
}

func newEngine(cfg Config) (*engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	e := &engine{cfg: cfg, encLevel: zstd.EncoderLevelFromZstd(zstdLevel(cfg.Level)), encoders: make(chan *zstd.Encoder, 4)}
	var err error
	e.small, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(e.encLevel), zstd.WithZeroFrames(true))
	if err != nil {
		return nil, fmt.Errorf("spill: zstd encoder: %w", err)
	}
	e.smallDec, err = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(smallMax), zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		return nil, fmt.Errorf("spill: zstd decoder: %w", err)
	}
	return e, nil
}

// zstdLevel maps Config.Level 1..4 to zstd's levels (fastest, default,
// better, best).
func zstdLevel(l int) int { return [...]int{1, 1, 3, 7, 11}[l] }

func (e *engine) close() {
	_ = e.small.Close()
	e.smallDec.Close()
	for {
		select {
		case enc := <-e.encoders:
			_ = enc.Close()
		default:
			return
		}
	}
}

func (e *engine) getEncoder(w io.Writer) (*zstd.Encoder, error) {
	select {
	case enc := <-e.encoders:
		enc.Reset(w)
		return enc, nil
	default:
	}
	return zstd.NewWriter(w, zstd.WithEncoderLevel(e.encLevel), zstd.WithWindowSize(encoderWindow),
		zstd.WithEncoderConcurrency(1), zstd.WithZeroFrames(true))
}

func (e *engine) putEncoder(enc *zstd.Encoder) {
	enc.Reset(nil)
	select {
	case e.encoders <- enc:
	default:
	}
}

func newGen() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// countingReader hashes and counts what it reads, enforces the size limit
// and stops when ctx is done.
type countingReader struct {
	ctx   context.Context
	r     io.Reader
	h     *xxhash.Digest
	n     int64
	limit int64
	err   error // the first error from r (not io.EOF)
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if c.limit > 0 && c.n > c.limit {
		c.err = fmt.Errorf("%w: more than %d bytes (Config.MaxBlobBytes)", ErrTooLarge, c.limit)
		return n, c.err
	}
	if err != nil && err != io.EOF && c.err == nil {
		c.err = fmt.Errorf("reading input: %w", err)
		return n, c.err
	}
	return n, err
}

// put compresses r into chunks handed to sink and commits the manifest.
func (e *engine) put(ctx context.Context, key string, r io.Reader, sink chunkSink, gen string) (Info, error) {
	start := time.Now()
	cr := &countingReader{ctx: ctx, r: r, h: xxhash.New(), limit: e.cfg.MaxBlobBytes}
	head := make([]byte, smallMax+1)
	n, err := io.ReadFull(cr, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return Info{Key: key}, blobErr("put", key, NoChunk, err)
	}
	m := &manifest{Version: manifestVersion, Codec: codecZstd, ChunkSize: e.cfg.ChunkSize, Gen: gen}
	if n <= smallMax {
		comp := e.small.EncodeAll(head[:n], nil)
		var chunks [][]byte
		for off := 0; off < len(comp); off += m.ChunkSize {
			c := comp[off:min(off+m.ChunkSize, len(comp))]
			chunks = append(chunks, c)
			m.Sums = append(m.Sums, crc32.Checksum(c, castagnoli))
		}
		m.Size, m.CSize, m.Sum = int64(n), int64(len(comp)), cr.h.Sum64()
		m.Created = time.Now().UnixMilli()
		if err := sink.putSmall(ctx, chunks, m); err != nil {
			return Info{Key: key}, err
		}
		return Info{Key: key, RawBytes: m.Size, CompressedBytes: m.CSize, Chunks: len(chunks), Duration: time.Since(start)}, nil
	}
	return e.putStream(ctx, key, head[:n], cr, sink, m, start)
}

type filled struct {
	i int
	b []byte
}

// chunker is the io.Writer under the zstd encoder: it cuts the compressed
// stream into chunks and queues full ones for the writer goroutine.
type chunker struct {
	ctx    context.Context
	size   int
	cur    []byte
	free   chan []byte
	queue  chan filled
	sums   []uint32
	total  int64
	nbufs  int
	maxbuf int
}

func (c *chunker) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if c.cur == nil {
			if err := c.next(); err != nil {
				return written, err
			}
		}
		k := copy(c.cur[len(c.cur):c.size], p)
		c.cur = c.cur[:len(c.cur)+k]
		p = p[k:]
		written += k
		if len(c.cur) == c.size {
			if err := c.flush(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

func (c *chunker) next() error {
	if c.nbufs < c.maxbuf {
		select {
		case b := <-c.free:
			c.cur = b[:0]
			return nil
		default:
		}
		c.nbufs++
		c.cur = make([]byte, 0, c.size)
		return nil
	}
	select {
	case b := <-c.free:
		c.cur = b[:0]
		return nil
	case <-c.ctx.Done():
		return context.Cause(c.ctx)
	}
}

func (c *chunker) flush() error {
	if len(c.cur) == 0 {
		return nil
	}
	c.sums = append(c.sums, crc32.Checksum(c.cur, castagnoli))
	c.total += int64(len(c.cur))
	select {
	case c.queue <- filled{i: len(c.sums) - 1, b: c.cur}:
		c.cur = nil
		return nil
	case <-c.ctx.Done():
		return context.Cause(c.ctx)
	}
}

func (e *engine) putStream(ctx context.Context, key string, head []byte, cr *countingReader, sink chunkSink, m *manifest, start time.Time) (Info, error) {
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ch := &chunker{ctx: wctx, size: m.ChunkSize, free: make(chan []byte, writeQueue+2),
		queue: make(chan filled, writeQueue), maxbuf: writeQueue + 2}
	var wg sync.WaitGroup
	var sinkErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for f := range ch.queue {
			if sinkErr == nil {
				if err := sink.writeChunk(wctx, f.i, f.b); err != nil {
					sinkErr = err
					cancel(err)
				}
			}
			ch.free <- f.b
		}
	}()
	fail := func(err error) (Info, error) {
		close(ch.queue)
		wg.Wait()
		if sinkErr != nil {
			err = sinkErr
		} else if cr.err != nil {
			err = blobErr("put", key, NoChunk, cr.err)
		} else if _, ok := err.(*BlobError); !ok {
			err = blobErr("put", key, NoChunk, err)
		}
		actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		sink.abort(actx)
		acancel()
		return Info{Key: key}, err
	}
	enc, err := e.getEncoder(ch)
	if err != nil {
		return fail(fmt.Errorf("zstd encoder: %w", err))
	}
	if _, err := enc.Write(head); err != nil {
		_ = enc.Close()
		return fail(err)
	}
	if _, err := enc.ReadFrom(cr); err != nil {
		_ = enc.Close()
		return fail(err)
	}
	if err := enc.Close(); err != nil {
		return fail(err)
	}
	e.putEncoder(enc)
	if err := ch.flush(); err != nil {
		return fail(err)
	}
	close(ch.queue)
	wg.Wait()
	if sinkErr != nil {
		actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		sink.abort(actx)
		acancel()
		return Info{Key: key}, sinkErr
	}
	m.Size, m.CSize, m.Sums, m.Sum = cr.n, ch.total, ch.sums, cr.h.Sum64()
	m.Created = time.Now().UnixMilli()
	if err := sink.commit(ctx, m); err != nil {
		actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		sink.abort(actx)
		acancel()
		return Info{Key: key}, err
	}
	return Info{Key: key, RawBytes: m.Size, CompressedBytes: m.CSize, Chunks: m.chunks(), Duration: time.Since(start)}, nil
}

// verifyChunk checks chunk i against the manifest.
func verifyChunk(key string, m *manifest, i int, b []byte) error {
	if want := m.chunkLen(i); len(b) != want {
		return &BlobError{Op: "read", Key: key, Chunk: i, Chunks: m.chunks(),
			Err: fmt.Errorf("%w: chunk is %d bytes, manifest says %d", ErrCorrupt, len(b), want)}
	}
	if got := crc32.Checksum(b, castagnoli); got != m.Sums[i] {
		return &BlobError{Op: "read", Key: key, Chunk: i, Chunks: m.chunks(),
			Err: fmt.Errorf("%w: chunk crc32c %08x, manifest says %08x", ErrCorrupt, got, m.Sums[i])}
	}
	return nil
}

// get opens a verified streaming reader over src. It owns src.
func (e *engine) get(ctx context.Context, key string, m *manifest, src chunkSource) (io.ReadCloser, error) {
	if m.Size <= smallMax && m.chunks() == 1 {
		defer src.close()
		b, err := src.readChunk(ctx, 0, m.chunkLen(0), nil)
		if err != nil {
			return nil, err
		}
		if err := verifyChunk(key, m, 0, b); err != nil {
			return nil, err
		}
		out, err := e.smallDec.DecodeAll(b, make([]byte, 0, m.Size))
		if err != nil {
			return nil, &BlobError{Op: "read", Key: key, Chunk: 0, Chunks: 1, Err: fmt.Errorf("%w: zstd: %w", ErrCorrupt, err)}
		}
		if int64(len(out)) != m.Size || xxhash.Sum64(out) != m.Sum {
			return nil, blobErr("read", key, NoChunk, fmt.Errorf("%w: decoded %d bytes with xxh64 %016x, manifest says %d bytes, %016x", ErrCorrupt, len(out), xxhash.Sum64(out), m.Size, m.Sum))
		}
		return io.NopCloser(bytes.NewReader(out)), nil
	}
	rctx, cancel := context.WithCancel(ctx)
	br := &blobReader{key: key, m: m, src: src, rctx: rctx, cancel: cancel, h: xxhash.New(),
		chunks: make(chan fetched, e.cfg.ReadAhead), free: make(chan []byte, e.cfg.ReadAhead+2), done: make(chan struct{})}
	for i := 0; i < e.cfg.ReadAhead+2; i++ {
		br.free <- nil
	}
	go br.prefetch(rctx)
	dec, err := zstd.NewReader(&br.cr, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(e.cfg.DecoderMaxMemory), zstd.WithDecoderMaxWindow(e.cfg.DecoderMaxMemory))
	if err != nil {
		br.Close()
		return nil, blobErr("get", key, NoChunk, fmt.Errorf("zstd decoder: %w", err))
	}
	br.dec = dec
	br.cr.br = br
	return br, nil
}

type fetched struct {
	i   int
	b   []byte
	err error
}

// blobReader streams a verified blob.
type blobReader struct {
	key    string
	m      *manifest
	src    chunkSource
	rctx   context.Context
	cancel context.CancelFunc
	chunks chan fetched
	free   chan []byte
	done   chan struct{}
	dec    *zstd.Decoder
	h      *xxhash.Digest
	n      int64
	cr     chunkReader
	err    error
	closed bool
}

func (br *blobReader) prefetch(ctx context.Context) {
	defer close(br.done)
	defer close(br.chunks)
	for i := 0; i < br.m.chunks(); i++ {
		var buf []byte
		select {
		case buf = <-br.free:
		case <-ctx.Done():
			return
		}
		b, err := br.src.readChunk(ctx, i, br.m.chunkLen(i), buf)
		if err == nil {
			err = verifyChunk(br.key, br.m, i, b)
		}
		select {
		case br.chunks <- fetched{i: i, b: b, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// chunkReader is the io.Reader under the zstd decoder.
type chunkReader struct {
	br   *blobReader
	cur  []byte
	buf  []byte
	idx  int // index of the next chunk expected
	err  error
	done bool
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.cur) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		if c.buf != nil {
			c.br.free <- c.buf
			c.buf = nil
		}
		f, ok := <-c.br.chunks
		if !ok {
			if c.idx == c.br.m.chunks() {
				c.done = true
				c.err = io.EOF
			} else {
				cause := c.br.rctx.Err()
				if cause == nil {
					cause = context.Canceled
				}
				c.err = &BlobError{Op: "read", Key: c.br.key, Chunk: c.idx, Chunks: c.br.m.chunks(), Err: cause}
			}
			continue
		}
		if f.err != nil {
			c.err = f.err
			continue
		}
		c.idx++
		c.cur, c.buf = f.b, f.b
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}

func (br *blobReader) Read(p []byte) (int, error) {
	if br.err != nil {
		return 0, br.err
	}
	if br.closed {
		return 0, blobErr("read", br.key, NoChunk, errors.New("reader closed"))
	}
	n, err := br.dec.Read(p)
	br.h.Write(p[:n])
	br.n += int64(n)
	if br.n > br.m.Size {
		br.err = blobErr("read", br.key, br.cr.idx-1, fmt.Errorf("%w: decoded more than the manifest's %d bytes", ErrCorrupt, br.m.Size))
		return 0, br.err
	}
	switch {
	case err == nil:
		return n, nil
	case err == io.EOF:
		if br.cr.err != nil && br.cr.err != io.EOF {
			br.err = br.cr.err
			return n, br.err
		}
		if !br.cr.done {
			// The zstd stream ended before the last chunk: drain to know.
			if k, _ := io.ReadFull(&br.cr, make([]byte, 1)); k > 0 || !br.cr.done {
				br.err = blobErr("read", br.key, br.cr.idx-1, fmt.Errorf("%w: data after the end of the zstd stream", ErrCorrupt))
				return n, br.err
			}
		}
		if br.n != br.m.Size || br.h.Sum64() != br.m.Sum {
			br.err = blobErr("read", br.key, NoChunk, fmt.Errorf("%w: decoded %d bytes with xxh64 %016x, manifest says %d bytes, %016x", ErrCorrupt, br.n, br.h.Sum64(), br.m.Size, br.m.Sum))
			return n, br.err
		}
		br.err = io.EOF
		return n, io.EOF
	default:
		if br.cr.err != nil && br.cr.err != io.EOF {
			br.err = br.cr.err
		} else {
			br.err = &BlobError{Op: "read", Key: br.key, Chunk: max(br.cr.idx-1, 0), Chunks: br.m.chunks(), Err: fmt.Errorf("%w: zstd: %w", ErrCorrupt, err)}
		}
		return n, br.err
	}
}

// Close stops read-ahead and releases the decoder and the source. It is
// safe to call more than once.
func (br *blobReader) Close() error {
	if br.closed {
		return nil
	}
	br.closed = true
	br.cancel()
	for range br.chunks {
	}
	<-br.done
	if br.dec != nil {
		br.dec.Close()
	}
	return br.src.close()
}
