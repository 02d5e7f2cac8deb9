package subproc

import "bytes"

// heapMarker is what V8 prints before aborting on heap exhaustion.
var heapMarker = []byte("JavaScript heap out of memory")

// tailWriter keeps the last max bytes written and notes whether the V8 heap
// marker ever appeared, also across write boundaries and after it scrolled
// out of the tail. Not safe for concurrent use; one goroutine writes, and the
// reader reads after that goroutine has finished.
type tailWriter struct {
	max     int
	buf     []byte
	carry   []byte
	sawHeap bool
}

func newTailWriter(max int) *tailWriter { return &tailWriter{max: max} }

func (t *tailWriter) Write(p []byte) (int, error) {
	if !t.sawHeap {
		probe := append(t.carry, p...)
		if bytes.Contains(probe, heapMarker) {
			t.sawHeap = true
		}
		keep := min(len(probe), len(heapMarker)-1)
		t.carry = append(t.carry[:0:0], probe[len(probe)-keep:]...)
	}
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return len(p), nil
	}
	t.buf = append(t.buf, p...)
	// Compact only when the buffer doubled, so appends stay amortized O(1).
	if len(t.buf) > 2*t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailWriter) String() string {
	b := t.buf
	if len(b) > t.max {
		b = b[len(b)-t.max:]
	}
	return string(b)
}
