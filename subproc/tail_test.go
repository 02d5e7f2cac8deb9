package subproc

import (
	"strings"
	"testing"
)

func TestTailWriterKeepsEndAndSeesMarkerAcrossWrites(t *testing.T) {
	t.Parallel()
	tw := newTailWriter(16)
	msg := "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n"
	// Byte by byte: the marker never arrives in one Write.
	for i := range len(msg) {
		tw.Write([]byte{msg[i]})
	}
	tw.Write([]byte(strings.Repeat("1: 0xb78db3 node::Abort\n", 100)))
	if !tw.sawHeap {
		t.Fatal("marker split across writes not seen")
	}
	if got := tw.String(); len(got) != 16 || !strings.HasSuffix(got, "node::Abort\n") {
		t.Fatalf("tail %q", got)
	}
	if len(tw.buf) > 2*16 {
		t.Fatalf("buffer grew to %d bytes", len(tw.buf))
	}
	tw2 := newTailWriter(1024)
	tw2.Write([]byte("JavaScript heap out of mem"))
	tw2.Write([]byte("ory? no: just text\n"))
	if !tw2.sawHeap {
		t.Fatal("marker across two writes not seen")
	}
	tw3 := newTailWriter(1024)
	tw3.Write([]byte("JavaScript heap is fine\n"))
	if tw3.sawHeap {
		t.Fatal("false marker")
	}
}
