package dag

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type genParams struct {
	Size  ByteSize `json:"size"`
	Rows  int      `json:"rows"`
	Fail  int      `json:"fail"` // fail this many attempts
	Sleep Duration `json:"sleep"`
	Panic bool     `json:"panic"`
}

// testRegistry has small node types for executor tests:
// gen (bytes of size, reading all inputs first), rows (a table), filter
// (streams a table, keeps even rows), count (streams, counts rows into JSON).
func testRegistry(t testing.TB) *Registry {
	reg := NewRegistry()
	var mu sync.Mutex
	fails := map[string]int{}
	reg.MustRegister(Type{Name: "gen", Output: KindBytes, MaxInputs: -1, New: func(spec *NodeSpec) (Node, error) {
		var p genParams
		if err := DecodeParams(spec.Params, &p); err != nil {
			return nil, err
		}
		id := spec.ID
		return NodeFunc(func(ctx context.Context, in *Inputs, out *Output) error {
			for _, i := range in.All() {
				rc, err := i.Open(ctx)
				if err != nil {
					return err
				}
				_, err = io.Copy(io.Discard, rc)
				rc.Close()
				if err != nil {
					return err
				}
			}
			if p.Sleep > 0 {
				select {
				case <-time.After(time.Duration(p.Sleep)):
				case <-ctx.Done():
					return context.Cause(ctx)
				}
			}
			if p.Panic {
				panic("boom")
			}
			mu.Lock()
			fails[id]++
			n := fails[id]
			mu.Unlock()
			if n <= p.Fail {
				return fmt.Errorf("planned failure %d", n)
			}
			buf := make([]byte, 64<<10)
			for i := range buf {
				buf[i] = byte(i)
			}
			for left := int64(p.Size); left > 0; {
				k := min(left, int64(len(buf)))
				if _, err := out.Write(buf[:k]); err != nil {
					return err
				}
				left -= k
			}
			_, err := out.Writer()
			return err
		}), nil
	}})
	reg.MustRegister(Type{Name: "rows", Output: KindTable, New: func(spec *NodeSpec) (Node, error) {
		var p genParams
		if err := DecodeParams(spec.Params, &p); err != nil {
			return nil, err
		}
		return NodeFunc(func(ctx context.Context, in *Inputs, out *Output) error {
			w, err := out.Table([]string{"i", "s"})
			if err != nil {
				return err
			}
			for i := 0; i < p.Rows; i++ {
				if err := w.Write(ctx, Row{int64(i), strings.Repeat("x", 100)}); err != nil {
					return err
				}
			}
			return nil
		}), nil
	}})
	reg.MustRegister(Type{Name: "filter", Output: KindTable, StreamsInput: true, MinInputs: 1, MaxInputs: 1, New: func(spec *NodeSpec) (Node, error) {
		return NodeFunc(func(ctx context.Context, in *Inputs, out *Output) error {
			rr, err := in.At(0).Rows(ctx)
			if err != nil {
				return err
			}
			defer rr.Close()
			w, err := out.Table(rr.Columns())
			if err != nil {
				return err
			}
			for {
				r, err := rr.Next(ctx)
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return err
				}
				if r[0].(int64)%2 == 0 {
					if err := w.Write(ctx, r); err != nil {
						return err
					}
				}
			}
		}), nil
	}})
	reg.MustRegister(Type{Name: "bcount", Output: KindJSON, StreamsInput: true, MinInputs: 1, MaxInputs: 1, New: func(spec *NodeSpec) (Node, error) {
		var p genParams
		if err := DecodeParams(spec.Params, &p); err != nil {
			return nil, err
		}
		return NodeFunc(func(ctx context.Context, in *Inputs, out *Output) error {
			rc, err := in.At(0).Open(ctx)
			if err != nil {
				return err
			}
			defer rc.Close()
			r := io.Reader(rc)
			if p.Size > 0 { // read only this much, then stop the producer
				r = io.LimitReader(rc, int64(p.Size))
			}
			n, err := io.Copy(io.Discard, r)
			if err != nil {
				return err
			}
			return out.WriteJSON(map[string]int64{"bytes": n})
		}), nil
	}})
	reg.MustRegister(Type{Name: "count", Output: KindJSON, StreamsInput: true, MinInputs: 1, MaxInputs: 1, New: func(spec *NodeSpec) (Node, error) {
		return NodeFunc(func(ctx context.Context, in *Inputs, out *Output) error {
			rr, err := in.At(0).Rows(ctx)
			if err != nil {
				return err
			}
			defer rr.Close()
			n := 0
			for {
				_, err := rr.Next(ctx)
				if err == io.EOF {
					break
				}
				if err != nil {
					return err
				}
				n++
			}
			return out.WriteJSON(map[string]int{"rows": n})
		}), nil
	}})
	return reg
}

func plan(t testing.TB, reg *Registry, js string) *Plan {
	t.Helper()
	wf, err := Parse([]byte(js), LoadLimits{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Validate(wf, reg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func runPlan(t testing.TB, cfg Config, p *Plan) (*Result, error) {
	t.Helper()
	ex, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ex.Run(context.Background(), p)
}

// The shared output of a diamond is freed exactly when its third consumer
// releases it, never before.
func TestDiamondFreedAtLastConsumer(t *testing.T) {
	t.Parallel()
	reg := testRegistry(t)
	p := plan(t, reg, `{"name":"diamond","nodes":[
		{"id":"src","type":"gen","params":{"size":"4MiB"}},
		{"id":"a","type":"gen","inputs":["src"],"params":{"size":10,"sleep":"10ms"}},
		{"id":"b","type":"gen","inputs":["src"],"params":{"size":10,"sleep":"30ms"}},
		{"id":"c","type":"gen","inputs":["src"],"params":{"size":10,"sleep":"50ms"}},
		{"id":"join","type":"gen","inputs":["a","b","c"],"params":{"size":10}}]}`)
	var mu sync.Mutex
	var events []Event
	res, err := runPlan(t, Config{OnEvent: func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }}, p)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	releasedBy := map[string]bool{}
	freed := false
	for _, e := range events {
		switch {
		case e.Type == EventReleased && e.Node == "src":
			if freed {
				t.Fatalf("src released by %s after it was freed", e.By)
			}
			releasedBy[e.By] = true
			if want := 3 - len(releasedBy); e.Refs != want {
				t.Fatalf("after release by %s: refs = %d, want %d", e.By, e.Refs, want)
			}
		case e.Type == EventFreed && e.Node == "src":
			if len(releasedBy) != 3 {
				t.Fatalf("src freed after %d of 3 consumers released it", len(releasedBy))
			}
			if e.Bytes != 4<<20 {
				t.Fatalf("freed %d bytes, want %d", e.Bytes, 4<<20)
			}
			freed = true
		case e.Type == EventNodeFinished && releasedBy[e.Node] == false && (e.Node == "a" || e.Node == "b" || e.Node == "c") && freed:
			t.Fatalf("consumer %s finished after src was freed", e.Node)
		}
	}
	if !freed {
		t.Fatal("src never freed")
	}
	if got := res.Report.Node("src").Held; got < 40*time.Millisecond {
		t.Fatalf("src held %v, want at least the slowest consumer's 50ms", got)
	}
}

func chainJSON(n int, size string) string {
	var b strings.Builder
	b.WriteString(`{"name":"chain","nodes":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		in := ""
		if i > 0 {
			in = fmt.Sprintf(`"inputs":["n%d"],`, i-1)
		}
		fmt.Fprintf(&b, `{"id":"n%d","type":"gen",%s"params":{"size":%q}}`, i, in, size)
	}
	b.WriteString("]}")
	return b.String()
}

func TestChainEvictionPeak(t *testing.T) {
	t.Parallel()
	reg := testRegistry(t)
	const size = 4 << 20
	p := plan(t, reg, chainJSON(10, "4MiB"))
	res, err := runPlan(t, Config{}, p)
	if err != nil {
		t.Fatal(err)
	}
	res.Close()
	if got := res.Report.PeakLiveOutputBytes; got > 2*size || got < size {
		t.Fatalf("evict: peak live %d, want between 1 and 2 outputs (%d)", got, 2*size)
	}
	res, err = runPlan(t, Config{NoEvict: true}, p)
	if err != nil {
		t.Fatal(err)
	}
	res.Close()
	if got := res.Report.PeakLiveOutputBytes; got != 10*size {
		t.Fatalf("no-evict: peak live %d, want all 10 outputs (%d)", got, 10*size)
	}
}

func TestFailureSkipsDependentsOnly(t *testing.T) {
	t.Parallel()
	reg := testRegistry(t)
	p := plan(t, reg, `{"name":"f","nodes":[
		{"id":"bad","type":"gen","params":{"fail":5}},
		{"id":"dep","type":"gen","inputs":["bad"]},
		{"id":"dep2","type":"gen","inputs":["dep"]},
		{"id":"ok","type":"gen","params":{"size":100,"sleep":"20ms"}},
		{"id":"ok2","type":"gen","inputs":["ok"]}]}`)
	res, err := runPlan(t, Config{}, p)
	defer res.Close()
	var re *RunError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want *RunError", err)
	}
	if len(re.Failed) != 1 || re.Failed[0].Node != "bad" || re.Failed[0].Kind != KindError {
		t.Fatalf("failed = %v", re.Failed)
	}
	if strings.Join(re.Skipped, ",") != "dep,dep2" {
		t.Fatalf("skipped = %v", re.Skipped)
	}
	for id, want := range map[string]Status{"ok": StatusSucceeded, "ok2": StatusSucceeded, "dep": StatusSkipped, "bad": StatusFailed} {
		if got := res.Report.Node(id).Status; got != want {
			t.Errorf("%s: %s, want %s", id, got, want)
		}
	}
	if got := res.Report.Node("dep2").Upstream; len(got) != 1 || got[0] != "dep" {
		t.Errorf("dep2 upstream = %v", got)
	}
	if live, _ := res.r.acct.get(); live != 0 {
		t.Errorf("live bytes after run = %d", live)
	}
}

func TestFailFastCancelsOthers(t *testing.T) {
	t.Parallel()
	reg := testRegistry(t)
	p := plan(t, reg, `{"name":"f","nodes":[
		{"id":"bad","type":"gen","params":{"fail":1}},
		{"id":"slow","type":"gen","params":{"sleep":"10s"}}]}`)
	start := time.Now()
	res, err := runPlan(t, Config{FailFast: true}, p)
	res.Close()
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
	if st := res.Report.Node("slow").Status; st != StatusCancelled && st != StatusSkipped {
		t.Fatalf("slow: %s", st)
	}
}

func TestRetryAndTimeoutAndPanic(t *testing.T) {
	t.Parallel()
	reg := testRegistry(t)
	p := plan(t, reg, `{"name":"r","nodes":[
		{"id":"flaky","type":"gen","params":{"fail":2,"size":5},"retry":{"attempts":3,"backoff":"1ms"}},
		{"id":"slow","type":"gen","params":{"sleep":"5s"},"timeout":"50ms"},
		{"id":"p","type":"gen","params":{"panic":true}}]}`)
	res, err := runPlan(t, Config{}, p)
	defer res.Close()
	if err == nil {
		t.Fatal("want error")
	}
	if n := res.Report.Node("flaky"); n.Status != StatusSucceeded || n.Attempts != 3 {
		t.Fatalf("flaky: %s after %d attempts", n.Status, n.Attempts)
	}
	if n := res.Report.Node("slow"); n.ErrorKind != KindTimeout {
		t.Fatalf("slow: kind %q err %q", n.ErrorKind, n.Error)
	}
	if n := res.Report.Node("p"); n.ErrorKind != KindPanic {
		t.Fatalf("p: kind %q", n.ErrorKind)
	}
}

func TestCancelLeavesNothingRunning(t *testing.T) {
	t.Parallel()
	reg := testRegistry(t)
	p := plan(t, reg, `{"name":"c","nodes":[
		{"id":"a","type":"gen","params":{"sleep":"10s"}},
		{"id":"b","type":"gen","params":{"sleep":"10s"}},
		{"id":"rows","type":"rows","params":{"rows":100000000}},
		{"id":"f","type":"filter","inputs":["rows"]},
		{"id":"n","type":"count","inputs":["f"]},
		{"id":"c","type":"gen","inputs":["a"]}]}`)
	ex, _ := New(Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	res, err := ex.Run(ctx, p)
	res.Close()
	var re *RunError
	if !errors.As(err, &re) || re.Cause == nil {
		t.Fatalf("err = %v, want cancelled RunError", err)
	}
	if got := res.Report.Node("c").Status; got != StatusSkipped && got != StatusCancelled {
		t.Fatalf("c: %s", got)
	}
	if live, _ := res.r.acct.get(); live != 0 {
		t.Errorf("live bytes after cancel = %d", live)
	}
}

// A table with a single streaming consumer is piped: never materialised,
// and back-pressure keeps live bytes tiny whatever the row count.
func TestPipedTableBounded(t *testing.T) {
	t.Parallel()
	reg := testRegistry(t)
	p := plan(t, reg, `{"name":"s","nodes":[
		{"id":"rows","type":"rows","params":{"rows":200000}},
		{"id":"f","type":"filter","inputs":["rows"]},
		{"id":"n","type":"count","inputs":["f"]}]}`)
	res, err := runPlan(t, Config{}, p)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	var got map[string]int
	o, _ := res.Output("n")
	if err := o.Decode(context.Background(), &got); err != nil || got["rows"] != 100000 {
		t.Fatalf("rows = %v, %v", got, err)
	}
	if !res.Report.Node("rows").Piped || !res.Report.Node("f").Piped {
		t.Fatalf("not piped: %+v", res.Report.Nodes)
	}
	// 200,000 rows of ~110 bytes are 22 MB; the pipe holds a few batches.
	if peak := res.Report.PeakLiveOutputBytes; peak > 4<<20 {
		t.Fatalf("peak live %d bytes while piping", peak)
	}
	// Without pipes the same workflow materialises both tables.
	res2, err := runPlan(t, Config{NoPipe: true}, p)
	if err != nil {
		t.Fatal(err)
	}
	defer res2.Close()
	if peak := res2.Report.PeakLiveOutputBytes; peak < 10<<20 {
		t.Fatalf("NoPipe peak live %d, expected the table materialised", peak)
	}
}

// A table consumed by several nodes is materialised once, each consumer
// reading its own copy.
func TestMaterialisedTableSharedReaders(t *testing.T) {
	t.Parallel()
	reg := testRegistry(t)
	p := plan(t, reg, `{"name":"s","nodes":[
		{"id":"rows","type":"rows","params":{"rows":1000}},
		{"id":"a","type":"count","inputs":["rows"]},
		{"id":"b","type":"count","inputs":["rows"]}]}`)
	res, err := runPlan(t, Config{}, p)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	for _, id := range []string{"a", "b"} {
		var got map[string]int
		o, _ := res.Output(id)
		if err := o.Decode(context.Background(), &got); err != nil || got["rows"] != 1000 {
			t.Fatalf("%s rows = %v, %v", id, got, err)
		}
	}
	if res.Report.Node("rows").Piped {
		t.Fatal("a table with two consumers must not be piped")
	}
}

func TestValidateReportsEverything(t *testing.T) {
	t.Parallel()
	reg := testRegistry(t)
	wf, err := Parse([]byte(`{"name":"bad","nodes":[
		{"id":"a","type":"gen","inputs":["c"]},
		{"id":"b","type":"gen","inputs":["a"]},
		{"id":"c","type":"gen","inputs":["b"]},
		{"id":"a","type":"gen"},
		{"id":"d","type":"gne","inputs":["nope"]},
		{"id":"e","type":"gen","params":{"size":"lots","bogus":1}}]}`), LoadLimits{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Validate(wf, reg)
	var ie *InvalidError
	if !errors.As(err, &ie) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		`/nodes/0: cycle: a -> b -> c -> a`,
		`/nodes/3/id: duplicate id "a" (first used at /nodes/0)`,
		`/nodes/4/inputs/0: input "nope" names no node`,
		`/nodes/4/type: unknown node type "gne" (did you mean "gen"?) (known: bcount, count, filter, gen, rows)`,
		`/nodes/5/params`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
}

func TestPressureSpillsLargest(t *testing.T) {
	t.Parallel()
	reg := testRegistry(t)
	sp := newMemSpiller()
	pressure := make(chan int64, 1)
	var once atomic.Bool
	spilled := make(chan struct{})
	reg.MustRegister(Type{Name: "poke", Output: KindBytes, MaxInputs: -1, New: func(*NodeSpec) (Node, error) {
		return NodeFunc(func(ctx context.Context, in *Inputs, out *Output) error {
			if once.CompareAndSwap(false, true) {
				pressure <- 1
				select {
				case <-spilled:
				case <-time.After(10 * time.Second):
					return errors.New("no spill within 10s of pressure")
				}
			}
			for _, i := range in.All() {
				rc, err := i.Open(ctx)
				if err != nil {
					return err
				}
				n, _ := io.Copy(io.Discard, rc)
				rc.Close()
				fmt.Fprintf(out, "%s=%d;", i.NodeID(), n)
			}
			return nil
		}), nil
	}})
	p := plan(t, reg, `{"name":"p","nodes":[
		{"id":"big","type":"gen","params":{"size":"3MiB"}},
		{"id":"small","type":"gen","params":{"size":"1MiB"}},
		{"id":"x","type":"poke","inputs":["big","small"]}]}`)
	onEvent := func(e Event) {
		if e.Type == EventSpilled && e.Node == "big" {
			close(spilled)
		}
	}
	res, err := runPlan(t, Config{Spiller: sp, Pressure: pressure, Parallelism: 1, OnEvent: onEvent}, p)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	o, _ := res.Output("x")
	rc, _ := o.Open(context.Background())
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "big=3145728;small=1048576;" {
		t.Fatalf("x read %q", b)
	}
	if got := res.Report.Node("big").SpilledBytes; got != 3<<20 {
		t.Fatalf("big spilled %d bytes, want all of it", got)
	}
	if got := res.Report.Node("small").SpilledBytes; got != 0 {
		t.Fatalf("small spilled %d bytes; only the largest should go", got)
	}
	if n := sp.count(); n != 0 {
		t.Fatalf("%d blobs left after the run", n)
	}
}

// memSpiller is a test Spiller; the real stores live in package spill.
type memSpiller struct {
	mu    sync.Mutex
	blobs map[string][]byte
}

func newMemSpiller() *memSpiller { return &memSpiller{blobs: map[string][]byte{}} }

func (m *memSpiller) Spill(ctx context.Context, key string, r io.Reader) (SpillStat, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return SpillStat{}, err
	}
	m.mu.Lock()
	m.blobs[key] = b
	m.mu.Unlock()
	return SpillStat{Bytes: int64(len(b)), Compressed: int64(len(b))}, nil
}

func (m *memSpiller) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[key]
	if !ok {
		return nil, fmt.Errorf("%s: %w", key, ErrBlobNotFound)
	}
	return io.NopCloser(strings.NewReader(string(b))), nil
}

func (m *memSpiller) Delete(ctx context.Context, key string) error {
	m.mu.Lock()
	delete(m.blobs, key)
	m.mu.Unlock()
	return nil
}

func (m *memSpiller) count() int { m.mu.Lock(); defer m.mu.Unlock(); return len(m.blobs) }

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"name":"x","nodes":[{"id":"a","type":"gen","params":{"size":1}}]}`))
	f.Add([]byte(`{"name":"x","version":2,"defaults":{"retry":{"attempts":2}},"nodes":[{"id":"a","type":"gen","inputs":["a"]}]}`))
	f.Add([]byte(`[[[[`))
	reg := testRegistry(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		wf, err := Parse(data, LoadLimits{})
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse error not ErrInvalid: %v", err)
			}
			return
		}
		_, err = Validate(wf, reg)
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("Validate error not ErrInvalid: %v", err)
		}
	})
}

func TestSuspendAndResume(t *testing.T) {
	t.Parallel()
	reg := testRegistry(t)
	var approved atomic.Bool
	var srcRuns atomic.Int32
	reg.MustRegister(Type{Name: "approval", Output: KindBytes, MaxInputs: -1, New: func(*NodeSpec) (Node, error) {
		return NodeFunc(func(ctx context.Context, in *Inputs, out *Output) error {
			if !approved.Load() {
				return fmt.Errorf("waiting for approval: %w", ErrSuspended)
			}
			rc, err := in.At(0).Open(ctx)
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(out, rc)
			return err
		}), nil
	}})
	reg.MustRegister(Type{Name: "counted", Output: KindBytes, New: func(*NodeSpec) (Node, error) {
		return NodeFunc(func(ctx context.Context, in *Inputs, out *Output) error {
			srcRuns.Add(1)
			_, err := io.WriteString(out, "draft v1")
			return err
		}), nil
	}})
	p := plan(t, reg, `{"name":"s","nodes":[
		{"id":"src","type":"counted"},
		{"id":"ok","type":"approval","inputs":["src"]},
		{"id":"after","type":"gen","inputs":["ok"],"params":{"size":3}}]}`)
	sp := newMemSpiller()
	res, err := runPlan(t, Config{Spiller: sp, RunID: "r1", Durable: true}, p)
	res.Close()
	if !errors.Is(err, ErrSuspended) {
		t.Fatalf("err = %v, want ErrSuspended", err)
	}
	for id, want := range map[string]Status{"src": StatusSucceeded, "ok": StatusSuspended, "after": StatusPending} {
		if got := res.Report.Node(id).Status; got != want {
			t.Errorf("run 1: %s is %s, want %s", id, got, want)
		}
	}
	if res.Report.Status != "suspended" {
		t.Errorf("run status %q", res.Report.Status)
	}
	approved.Store(true)
	res, err = runPlan(t, Config{Spiller: sp, RunID: "r1", Resume: true}, p)
	if err != nil {
		t.Fatal(err)
	}
	res.Close()
	for id, want := range map[string]Status{"src": StatusResumed, "ok": StatusSucceeded, "after": StatusSucceeded} {
		if got := res.Report.Node(id).Status; got != want {
			t.Errorf("run 2: %s is %s, want %s", id, got, want)
		}
	}
	if n := srcRuns.Load(); n != 1 {
		t.Fatalf("src ran %d times", n)
	}
	if n := sp.count(); n != 0 {
		t.Fatalf("%d blobs left after the resumed run finished", n)
	}
}

// A bytes output with a single streaming consumer (a prompt into a model
// call) flows through a pipe: never held, and a consumer that stops early
// stops its producer without failing it.
func TestPipedBytes(t *testing.T) {
	t.Parallel()
	reg := testRegistry(t)
	p := plan(t, reg, `{"name":"b","nodes":[
		{"id":"big","type":"gen","params":{"size":"16MiB"}},
		{"id":"all","type":"bcount","inputs":["big"]},
		{"id":"big2","type":"gen","params":{"size":"16MiB"}},
		{"id":"some","type":"bcount","inputs":["big2"],"params":{"size":1000}}]}`)
	res, err := runPlan(t, Config{}, p)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	for id, want := range map[string]int64{"all": 16 << 20, "some": 1000} {
		var got map[string]int64
		o, _ := res.Output(id)
		if err := o.Decode(context.Background(), &got); err != nil || got["bytes"] != want {
			t.Fatalf("%s read %v (%v), want %d", id, got, err, want)
		}
	}
	if n := res.Report.Node("big"); !n.Piped || n.OutputBytes != 16<<20 || n.Status != StatusSucceeded {
		t.Fatalf("big: %+v", n)
	}
	if n := res.Report.Node("big2"); n.Status != StatusSucceeded {
		t.Fatalf("a producer whose consumer stopped early must succeed: %+v", n)
	}
	if peak := res.Report.PeakLiveOutputBytes; peak > 1<<20 {
		t.Fatalf("peak live %d bytes while piping 32 MiB", peak)
	}
}
