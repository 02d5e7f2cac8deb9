package dag

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"runtime/metrics"
	"strconv"
	"sync"
	"time"
)

// Report describes a finished run: node statuses, attempts, timings and
// memory. It is what `dagrun run --report` writes as JSON.
type Report struct {
	Workflow string    `json:"workflow"`
	Version  string    `json:"version,omitempty"`
	RunID    string    `json:"run_id"`
	Status   string    `json:"status"`
	Error    string    `json:"error,omitempty"`
	Started  time.Time `json:"started"`
	// Duration is the wall time of the run.
	Duration time.Duration `json:"duration_ns"`
	// Evict, Pipe and Spill say which memory features were on.
	Evict bool `json:"evict"`
	Pipe  bool `json:"pipe"`
	Spill bool `json:"spill"`
	// PeakLiveOutputBytes is the most output bytes held in memory at once
	// (exact: counted at every allocation and free).
	PeakLiveOutputBytes int64 `json:"peak_live_output_bytes"`
	// PeakHeapBytes is the peak of Go heap objects (runtime/metrics), sampled.
	PeakHeapBytes int64 `json:"peak_heap_bytes"`
	// PeakRSSBytes is the peak resident set of the process during the run,
	// sampled from /proc/self/statm.
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	// ProcessHWMBytes is the kernel's high-water mark of the process RSS
	// (VmHWM) at the end of the run: exact, but since process start.
	ProcessHWMBytes int64 `json:"process_hwm_bytes"`
	// SpilledBytes and SpilledCompressedBytes add up every spilled output.
	SpilledBytes           int64         `json:"spilled_bytes"`
	SpilledCompressedBytes int64         `json:"spilled_compressed_bytes"`
	Nodes                  []*NodeReport `json:"nodes"`
}

// NodeReport is one node's line in a Report.
type NodeReport struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Status    Status    `json:"status"`
	Attempts  int       `json:"attempts"`
	Error     string    `json:"error,omitempty"`
	ErrorKind ErrorKind `json:"error_kind,omitempty"`
	// Upstream lists the failed nodes that caused a skip.
	Upstream []string      `json:"upstream_failed,omitempty"`
	Started  time.Time     `json:"started,omitzero"`
	Duration time.Duration `json:"duration_ns"`
	// OutputKind and OutputBytes describe the committed output.
	OutputKind  Kind  `json:"output_kind,omitempty"`
	OutputBytes int64 `json:"output_bytes"`
	// Piped is true when the output streamed to its consumer and was never
	// materialised.
	Piped bool `json:"piped,omitempty"`
	// Held is how long the output was held, from completion to free.
	Held time.Duration `json:"held_ns"`
	// HeapGrowthBytes is the change in Go heap objects while the node ran
	// (other nodes running at the same time contribute too).
	HeapGrowthBytes        int64            `json:"heap_growth_bytes"`
	SpilledBytes           int64            `json:"spilled_bytes,omitempty"`
	SpilledCompressedBytes int64            `json:"spilled_compressed_bytes,omitempty"`
	SpillDuration          time.Duration    `json:"spill_ns,omitempty"`
	Mode                   string           `json:"mode,omitempty"`
	Metrics                map[string]int64 `json:"metrics,omitempty"`
}

// Node returns the report of node id, or nil.
func (r *Report) Node(id string) *NodeReport {
	for _, n := range r.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

func (rep *Report) fill(r *run, s *sampler) {
	rep.Duration = time.Since(rep.Started)
	_, rep.PeakLiveOutputBytes = r.acct.get()
	rep.PeakHeapBytes, rep.PeakRSSBytes = s.peaks()
	rep.ProcessHWMBytes = procHWM()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.plan.order {
		st := r.states[n.idx]
		nr := &NodeReport{ID: n.spec.ID, Type: n.spec.Type, Status: st.status, Attempts: st.attempts,
			Upstream: st.upstream, Started: st.started, HeapGrowthBytes: st.heapDelta, Piped: st.piped, Mode: st.mode, Metrics: st.metrics}
		if !st.ended.IsZero() {
			nr.Duration = st.ended.Sub(st.started)
		}
		if st.err != nil {
			nr.Error = st.err.Err.Error()
			nr.ErrorKind = st.err.Kind
		}
		if len(st.upstream) > 0 {
			nr.ErrorKind = KindUpstream
		}
		if v := r.values[n.idx]; v != nil {
			v.mu.Lock()
			nr.OutputKind, nr.OutputBytes = v.kind, v.size
			nr.SpilledBytes, nr.SpilledCompressedBytes, nr.SpillDuration = v.spill.Bytes, v.spill.Compressed, v.spillDur
			end := v.freedAt
			if end.IsZero() {
				end = time.Now()
			}
			if !v.doneAt.IsZero() {
				nr.Held = end.Sub(v.doneAt)
			}
			v.mu.Unlock()
			rep.SpilledBytes += nr.SpilledBytes
			rep.SpilledCompressedBytes += nr.SpilledCompressedBytes
		} else if st.piped {
			nr.OutputKind, nr.OutputBytes = n.typ.Output, st.pipedBytes
		}
		rep.Nodes = append(rep.Nodes, nr)
	}
}

// sampler samples Go heap and process RSS in the background.
type sampler struct {
	stopc chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	heap  int64
	rss   int64
}

func startSampler(every time.Duration) *sampler {
	s := &sampler{stopc: make(chan struct{}), done: make(chan struct{})}
	s.sample()
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.sample()
			case <-s.stopc:
				return
			}
		}
	}()
	return s
}

func (s *sampler) sample() {
	h, r := readHeap(), ProcessRSS()
	s.mu.Lock()
	s.heap = max(s.heap, h)
	s.rss = max(s.rss, r)
	s.mu.Unlock()
}

func (s *sampler) stop() {
	close(s.stopc)
	<-s.done
	s.sample()
}

func (s *sampler) peaks() (heap, rss int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.heap, s.rss
}

var heapSample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
var heapMu sync.Mutex

func readHeap() int64 {
	heapMu.Lock()
	defer heapMu.Unlock()
	metrics.Read(heapSample)
	if heapSample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(heapSample[0].Value.Uint64())
}

var pageSize = int64(os.Getpagesize())

// ProcessRSS returns the resident set size of this process in bytes, from
// /proc/self/statm (0 where unavailable).
func ProcessRSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseInt(string(f[1]), 10, 64)
	return n * pageSize
}

// procHWM returns VmHWM of this process in bytes.
func procHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("VmHWM:")) {
			f := bytes.Fields(line[6:])
			if len(f) > 0 {
				n, _ := strconv.ParseInt(string(f[0]), 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

func newRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
