// Command spill-bench measures the spill store: peak Go heap while spilling
// and reading back a 256 MiB output, Put/Get throughput against raw zstd on
// the same bytes, and compression ratios on realistic outputs. Every case
// runs in its own child process (peak RSS from wait4 rusage); the parent
// repeats each case -runs times and prints medians as markdown.
//
//	go run ./benchmarks/spill -runs 5
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/redis/go-redis/v9"

	"github.com/dagrun/dagrun/spill"
)

type result map[string]float64

func main() {
	child := flag.String("child", "", "run one case (internal)")
	redisAddr := flag.String("redis", "", "redis address (internal)")
	runs := flag.Int("runs", 5, "runs per case")
	only := flag.String("only", "", "only cases containing this string")
	flag.Parse()
	if *child != "" {
		res, err := runCase(*child, *redisAddr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		_ = json.NewEncoder(os.Stdout).Encode(res)
		return
	}
	if err := parent(*runs, *only); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func parent(runs int, only string) error {
	addr, stop, err := startRedis()
	if err != nil {
		return err
	}
	defer stop()
	cases := []string{"heap:dir", "heap:redis"}
	for _, st := range []string{"dir", "redis"} {
		for _, mb := range []int{1, 16, 256} {
			cases = append(cases, fmt.Sprintf("tput:%s:%d", st, mb))
		}
	}
	cases = append(cases, "ratio")
	fmt.Printf("GOMAXPROCS=%d, %s, runs per case: %d (medians)\n\n", runtime.GOMAXPROCS(0), runtime.Version(), runs)
	for _, c := range cases {
		if only != "" && !strings.Contains(c, only) {
			continue
		}
		var all []result
		for i := 0; i < runs; i++ {
			cmd := exec.Command(os.Args[0], "-child", c, "-redis", addr)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, os.Stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("case %s: %w", c, err)
			}
			var r result
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				return fmt.Errorf("case %s: %w: %s", c, err, out.Bytes())
			}
			r["peak_rss_mib"] = float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) / 1024
			all = append(all, r)
		}
		fmt.Printf("### %s\n\n| metric | median | min | max |\n|---|---|---|---|\n", c)
		var keys []string
		for k := range all[0] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			var v []float64
			for _, r := range all {
				v = append(v, r[k])
			}
			sort.Float64s(v)
			fmt.Printf("| %s | %.3f | %.3f | %.3f |\n", k, v[len(v)/2], v[0], v[len(v)-1])
		}
		fmt.Println()
	}
	return nil
}

func startRedis() (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, _ := os.MkdirTemp("", "spill-bench-redis")
	cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
		"--save", "", "--appendonly", "no", "--loglevel", "warning")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start redis-server: %w", err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	for i := 0; c.Ping(context.Background()).Err() != nil; i++ {
		if i > 200 {
			return "", nil, fmt.Errorf("redis-server on %s not ready", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return addr, func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); os.RemoveAll(dir) }, nil
}

func openStore(kind, redisAddr string) (spill.StoreCloser, func(), error) {
	switch kind {
	case "dir":
		dir, err := os.MkdirTemp("", "spill-bench")
		if err != nil {
			return nil, nil, err
		}
		s, err := spill.NewDir(dir, spill.Config{})
		return s, func() { s.Close(); os.RemoveAll(dir) }, err
	case "redis":
		c := redis.NewClient(&redis.Options{Addr: redisAddr})
		if err := c.FlushAll(context.Background()).Err(); err != nil {
			return nil, nil, err
		}
		s, err := spill.NewRedis(c, spill.Config{})
		return s, func() { s.Close(); c.Close() }, err
	}
	return nil, nil, fmt.Errorf("unknown store %q", kind)
}

func runCase(name, redisAddr string) (result, error) {
	parts := strings.Split(name, ":")
	switch parts[0] {
	case "heap":
		return heapCase(parts[1], redisAddr)
	case "tput":
		mb, _ := strconv.Atoi(parts[2])
		return tputCase(parts[1], redisAddr, int64(mb)<<20)
	case "ratio":
		return ratioCase()
	}
	return nil, fmt.Errorf("unknown case %q", name)
}

var heapObjects = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}

var liveMax uint64

func heapNow() uint64 {
	metrics.Read(heapObjects)
	liveMax = max(liveMax, heapObjects[1].Value.Uint64())
	return heapObjects[0].Value.Uint64()
}

// heapCase spills a streamed 256 MiB output and reads it back, sampling
// the live+unswept heap every 200µs.
func heapCase(kind, redisAddr string) (result, error) {
	s, cleanup, err := openStore(kind, redisAddr)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	ctx := context.Background()
	const size = 256 << 20
	runtime.GC()
	base := heapNow()
	liveBase := heapObjects[1].Value.Uint64()
	stop := make(chan struct{})
	peakc := make(chan uint64)
	go func() {
		var peak uint64
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for {
			select {
			case _, more := <-stop:
				peakc <- max(peak, heapNow())
				if !more {
					return
				}
				peak = 0
			case <-t.C:
				peak = max(peak, heapNow())
			}
		}
	}()
	start := time.Now()
	info, err := s.Put(ctx, "runs/bench/heap", datasets[0].New(1, size))
	if err != nil {
		return nil, err
	}
	putDur := time.Since(start)
	stop <- struct{}{}
	putPeak := <-peakc
	// The generator's garbage is the harness's, not the store's: collect
	// it so the read-back phase starts from the same baseline.
	runtime.GC()
	stop <- struct{}{}
	<-peakc
	start = time.Now()
	rc, err := s.Get(ctx, "runs/bench/heap")
	if err != nil {
		return nil, err
	}
	n, err := io.Copy(io.Discard, rc)
	rc.Close()
	if err != nil || n != size {
		return nil, fmt.Errorf("read back %d bytes: %v", n, err)
	}
	getDur := time.Since(start)
	if p := os.Getenv("SPILL_MEMPROFILE"); p != "" {
		f, _ := os.Create(p)
		_ = pprof.Lookup("allocs").WriteTo(f, 0)
		f.Close()
	}
	close(stop)
	getPeak := <-peakc
	peak := max(putPeak, getPeak)
	return result{
		"heap_put_above_baseline_mib":      mib(putPeak) - mib(base),
		"live_heap_max_above_baseline_mib": mib(liveMax) - mib(liveBase),
		"heap_get_above_baseline_mib":      mib(getPeak) - mib(base),
		"heap_baseline_mib":                mib(base),
		"heap_peak_mib":                    mib(peak),
		"heap_above_baseline_mib":          mib(peak) - mib(base),
		"put_mb_s":                         float64(size) / 1e6 / putDur.Seconds(),
		"get_mb_s":                         float64(size) / 1e6 / getDur.Seconds(),
		"compression_ratio":                info.Ratio(),
	}, nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// The store's codec settings for Config{} (Level 1): see spill/engine.go.
func rawEncoder(w io.Writer) (*zstd.Encoder, error) {
	return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(1<<20),
		zstd.WithEncoderConcurrency(1), zstd.WithZeroFrames(true))
}

func rawDecoder(r io.Reader) (*zstd.Decoder, error) {
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(spill.DefaultDecoderMemory), zstd.WithDecoderMaxWindow(spill.DefaultDecoderMemory))
}

// tputCase compares Put with raw streaming zstd compression of the same
// in-memory bytes, and Get with raw streaming decompression.
func tputCase(kind, redisAddr string, size int64) (result, error) {
	data, err := io.ReadAll(datasets[0].New(2, size))
	if err != nil {
		return nil, err
	}
	s, cleanup, err := openStore(kind, redisAddr)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	ctx := context.Background()
	// Repeat small sizes so each timing covers at least 64 MiB.
	reps := int(max(1, (64<<20)/size))

	var comp bytes.Buffer
	start := time.Now()
	for i := 0; i < reps; i++ {
		comp.Reset()
		enc, err := rawEncoder(&comp)
		if err != nil {
			return nil, err
		}
		if _, err := enc.ReadFrom(bytes.NewReader(data)); err != nil {
			return nil, err
		}
		if err := enc.Close(); err != nil {
			return nil, err
		}
	}
	rawC := time.Since(start)

	start = time.Now()
	for i := 0; i < reps; i++ {
		if _, err := s.Put(ctx, fmt.Sprintf("runs/bench/t%d", i%4), bytes.NewReader(data)); err != nil {
			return nil, err
		}
	}
	put := time.Since(start)

	start = time.Now()
	for i := 0; i < reps; i++ {
		dec, err := rawDecoder(bytes.NewReader(comp.Bytes()))
		if err != nil {
			return nil, err
		}
		if n, err := io.Copy(io.Discard, dec); err != nil || n != size {
			return nil, fmt.Errorf("raw decode %d: %v", n, err)
		}
		dec.Close()
	}
	rawD := time.Since(start)

	start = time.Now()
	for i := 0; i < reps; i++ {
		rc, err := s.Get(ctx, fmt.Sprintf("runs/bench/t%d", i%4))
		if err != nil {
			return nil, err
		}
		if n, err := io.Copy(io.Discard, rc); err != nil || n != size {
			return nil, fmt.Errorf("get %d: %v", n, err)
		}
		rc.Close()
	}
	get := time.Since(start)
	mbps := func(d time.Duration) float64 { return float64(size) * float64(reps) / 1e6 / d.Seconds() }
	return result{
		"raw_zstd_compress_mb_s":   mbps(rawC),
		"put_mb_s":                 mbps(put),
		"put_vs_raw":               rawC.Seconds() / put.Seconds(),
		"raw_zstd_decompress_mb_s": mbps(rawD),
		"get_mb_s":                 mbps(get),
		"get_vs_raw":               rawD.Seconds() / get.Seconds(),
	}, nil
}

// ratioCase reports the compression ratio of 32 MiB of each dataset.
func ratioCase() (result, error) {
	s, cleanup, err := openStore("dir", "")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	res := result{}
	for _, d := range datasets {
		info, err := s.Put(context.Background(), "runs/ratio/"+d.Name, d.New(3, 32<<20))
		if err != nil {
			return nil, err
		}
		res["ratio_"+d.Name] = info.Ratio()
	}
	return res, nil
}
