package spill_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/dagrun/dagrun/spill"
)

// A node's output is spilled to a local directory and read back.
func ExampleDirStore() {
	dir, _ := os.MkdirTemp("", "spill-example")
	defer os.RemoveAll(dir)
	store, err := spill.NewDir(dir, spill.Config{Prefix: "tenant-a"})
	if err != nil {
		panic(err)
	}
	defer store.Close()
	ctx := context.Background()

	output := strings.Repeat(`{"row":1,"region":"EMEA","total":1234.5}`+"\n", 10000)
	info, err := store.Put(ctx, "runs/run-42/extract", strings.NewReader(output))
	if err != nil {
		panic(err)
	}
	fmt.Println("raw bytes:", info.RawBytes, "chunks:", info.Chunks, "compressed smaller:", info.CompressedBytes < info.RawBytes)

	rc, err := store.Get(ctx, "runs/run-42/extract")
	if err != nil {
		panic(err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	fmt.Println("read back:", n, err)

	_ = store.Delete(ctx, "runs/run-42/extract")
	_, err = store.Get(ctx, "runs/run-42/extract")
	fmt.Println("after delete, not found:", errors.Is(err, spill.ErrNotFound))
	// Output:
	// raw bytes: 410000 chunks: 1 compressed smaller: true
	// read back: 410000 <nil>
	// after delete, not found: true
}

// Open picks the store from a URL; redis:// and rediss:// URLs work the same.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "spill-example")
	defer os.RemoveAll(dir)
	store, err := spill.Open(context.Background(), "dir://"+dir+"?ttl=72h&prefix=tenant-b")
	if err != nil {
		panic(err)
	}
	defer store.Close()
	info, err := store.Put(context.Background(), "runs/run-1/record", strings.NewReader(`{"state":"running"}`))
	fmt.Println(info.RawBytes, err)
	// Output: 19 <nil>
}
