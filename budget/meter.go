// Package budget measures the real memory of the container a process runs in
// and admits work against it.
//
// A Meter reads the working set (cgroup usage minus inactive file cache) and
// the limit of the process's own memory cgroup, v2 or v1, falling back to the
// host's memory (or a configured budget) when the cgroup has no limit and to
// the process RSS when no memory cgroup is readable. A Monitor samples a Meter
// every 250 ms in a goroutine owned by the caller and exports the figures. A
// Gate admits work byte-weighted against the limit, with a pause threshold and
// hysteresis, and keeps reservations by key for per-workflow attribution.
//
// The working set, not memory.current, is what the kernel cannot reclaim: page
// cache that is inactive would otherwise pause a worker for nothing.
package budget

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Source names where a Sample came from.
type Source string

// Sources of a Sample.
const (
	SourceCgroupV2 Source = "cgroup2"
	SourceCgroupV1 Source = "cgroup1"
	SourceRSS      Source = "rss"
)

// unlimited is the threshold above which a cgroup limit counts as "no limit"
// (v1 reports 9223372036854771712, page-aligned MaxInt64).
const unlimited = 1 << 62

// Sample is one reading of the container's memory.
type Sample struct {
	// WorkingSet is usage minus inactive file cache, in bytes.
	WorkingSet uint64
	// Usage is the raw cgroup usage (memory.current or memory.usage_in_bytes).
	Usage uint64
	// InactiveFile is the reclaimable file cache subtracted from Usage.
	InactiveFile uint64
	// Limit is the memory limit in bytes: the cgroup limit, else the
	// configured budget, else the host's MemTotal.
	Limit uint64
	// LimitFromCgroup reports whether Limit is the cgroup's own limit.
	LimitFromCgroup bool
	// Source says which files were read.
	Source Source
}

// Fraction is WorkingSet / Limit (0 when Limit is 0).
func (s Sample) Fraction() float64 {
	if s.Limit == 0 {
		return 0
	}
	return float64(s.WorkingSet) / float64(s.Limit)
}

// Config says where a Meter looks. The zero value reads the real system.
type Config struct {
	// CgroupRoot is where the cgroup filesystems are mounted
	// (default /sys/fs/cgroup).
	CgroupRoot string
	// ProcRoot is the proc filesystem (default /proc); /proc/self/cgroup,
	// /proc/self/statm and /proc/meminfo are read below it.
	ProcRoot string
	// Budget, when non-zero, is the limit used when the cgroup has none, and
	// also caps a cgroup limit that is larger.
	Budget uint64
	// Dir, when set, is the memory cgroup directory to read instead of the
	// process's own (v1 or v2 layout is detected from the files in it).
	Dir string
}

// ErrNoMemoryInfo is returned by Detect when neither a memory cgroup nor
// /proc is readable.
var ErrNoMemoryInfo = errors.New("budget: no memory cgroup or /proc readable")

// Meter reads one memory cgroup (or the process RSS). It holds no open files
// and is safe for concurrent use.
type Meter struct {
	cfg    Config
	dir    string // cgroup directory, "" for RSS
	source Source
	host   uint64 // MemTotal
}

// Detect finds the memory cgroup of the calling process (cgroup v2 first, then
// v1) and returns a Meter for it, or a Meter on the process RSS when there is
// none.
func Detect(cfg Config) (*Meter, error) {
	if cfg.CgroupRoot == "" {
		cfg.CgroupRoot = "/sys/fs/cgroup"
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	m := &Meter{cfg: cfg}
	m.host, _ = hostMemTotal(filepath.Join(cfg.ProcRoot, "meminfo"))
	if cfg.Dir != "" {
		src, ok := layoutOf(cfg.Dir)
		if !ok {
			return nil, fmt.Errorf("budget: %s has neither memory.current nor memory.usage_in_bytes", cfg.Dir)
		}
		m.dir, m.source = cfg.Dir, src
		return m, nil
	}
	v1, v2, err := ownCgroups(filepath.Join(cfg.ProcRoot, "self", "cgroup"))
	if err == nil {
		for _, cand := range candidatesV2(cfg.CgroupRoot, v2) {
			if src, ok := layoutOf(cand); ok && src == SourceCgroupV2 {
				m.dir, m.source = cand, src
				return m, nil
			}
		}
		if v1 != "" {
			for _, cand := range []string{
				filepath.Join(cfg.CgroupRoot, "memory", v1),
				filepath.Join(cfg.CgroupRoot, "memory"), // cgroup namespace: we are at the root
			} {
				if src, ok := layoutOf(cand); ok && src == SourceCgroupV1 {
					m.dir, m.source = cand, src
					return m, nil
				}
			}
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.ProcRoot, "self", "statm")); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoMemoryInfo, err)
	}
	m.source = SourceRSS
	return m, nil
}

func candidatesV2(root, p string) []string {
	if p == "" {
		return nil
	}
	return []string{filepath.Join(root, p), filepath.Join(root, "unified", p), root}
}

// layoutOf tells a v2 directory (memory.current) from a v1 one.
func layoutOf(dir string) (Source, bool) {
	if _, err := os.Stat(filepath.Join(dir, "memory.current")); err == nil {
		return SourceCgroupV2, true
	}
	if _, err := os.Stat(filepath.Join(dir, "memory.usage_in_bytes")); err == nil {
		return SourceCgroupV1, true
	}
	return "", false
}

// ownCgroups parses /proc/self/cgroup: the v1 memory path and the v2 path.
func ownCgroups(path string) (v1, v2 string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				v1 = parts[2]
			}
		}
	}
	return v1, v2, nil
}

// Source reports what the Meter reads.
func (m *Meter) Source() Source { return m.source }

// Dir is the cgroup directory read, or "" for the RSS fallback.
func (m *Meter) Dir() string { return m.dir }

// Read takes one sample. It reads two or three small files.
func (m *Meter) Read() (Sample, error) {
	var s Sample
	var err error
	switch m.source {
	case SourceCgroupV2:
		s, err = m.readCgroup("memory.current", "memory.max", "inactive_file")
	case SourceCgroupV1:
		s, err = m.readCgroup("memory.usage_in_bytes", "memory.limit_in_bytes", "total_inactive_file")
	default:
		s, err = m.readRSS()
	}
	if err != nil {
		return Sample{}, err
	}
	s.Source = m.source
	switch {
	case m.cfg.Budget != 0 && (s.Limit == 0 || m.cfg.Budget < s.Limit):
		s.Limit, s.LimitFromCgroup = m.cfg.Budget, false
	case s.Limit == 0:
		s.Limit = m.host
	}
	return s, nil
}

func (m *Meter) readCgroup(usageFile, limitFile, inactiveKey string) (Sample, error) {
	var s Sample
	usage, err := readUint(filepath.Join(m.dir, usageFile))
	if err != nil {
		return s, err
	}
	limit, err := readUint(filepath.Join(m.dir, limitFile))
	if err != nil {
		return s, err
	}
	inactive, err := statValue(filepath.Join(m.dir, "memory.stat"), inactiveKey)
	if err != nil {
		return s, err
	}
	s.Usage, s.InactiveFile = usage, inactive
	if inactive < usage {
		s.WorkingSet = usage - inactive
	}
	if limit != 0 && limit < unlimited {
		s.Limit, s.LimitFromCgroup = limit, true
	}
	return s, nil
}

func (m *Meter) readRSS() (Sample, error) {
	path := filepath.Join(m.cfg.ProcRoot, "self", "statm")
	b, err := os.ReadFile(path)
	if err != nil {
		return Sample{}, fmt.Errorf("budget: read %s: %w", path, err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return Sample{}, fmt.Errorf("budget: %s: want at least 2 fields, got %q", path, b)
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return Sample{}, fmt.Errorf("budget: %s field 2 (resident): %w", path, err)
	}
	rss := pages * uint64(os.Getpagesize())
	return Sample{WorkingSet: rss, Usage: rss}, nil
}

// readUint reads a file holding one number or "max" (returned as 0).
func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("budget: read %s: %w", path, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "max" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("budget: %s: %w", path, err)
	}
	return n, nil
}

// statValue returns the value of key in a memory.stat file (0 if absent).
func statValue(path, key string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("budget: read %s: %w", path, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == key {
			n, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("budget: %s key %s: %w", path, key, err)
			}
			return n, nil
		}
	}
	return 0, nil
}

func hostMemTotal(path string) (uint64, error) {
	kb, err := statValue(path, "MemTotal:")
	if err != nil {
		return 0, err
	}
	return kb * 1024, nil
}
