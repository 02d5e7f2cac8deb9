// Package cgroup is the small cgroup layer under subproc: it finds the
// memory cgroup of the current process (v2 unified or v1 memory hierarchy),
// creates one child cgroup per subprocess below it with a memory limit, reads
// the child's peak and OOM-kill counters, kills everything inside it and
// removes it.
//
// Every function takes explicit directories, so the same code runs against the
// real cgroupfs and against a fake tree of plain files in a test directory.
// Nothing here moves the calling process except Hierarchy.Prepare on v2, and
// only when the "no internal processes" rule requires it.
package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Version is a cgroup hierarchy layout.
type Version int

const (
	// V1 is the legacy per-controller hierarchy (the "memory" mount).
	V1 Version = 1
	// V2 is the unified hierarchy.
	V2 Version = 2
)

// String returns "v1" or "v2".
func (v Version) String() string {
	switch v {
	case V1:
		return "v1"
	case V2:
		return "v2"
	}
	return "v?"
}

// ErrUnavailable reports that no writable memory cgroup hierarchy was found.
var ErrUnavailable = errors.New("cgroup: no usable memory cgroup")

// LeafName is the cgroup the v2 Prepare step moves the worker's own processes
// into, so that the worker's cgroup may enable the memory controller for its
// children.
const LeafName = "dagrun-worker"

// Hierarchy is where child cgroups are created.
type Hierarchy struct {
	// Version is the layout of the hierarchy.
	Version Version
	// Parent is the absolute directory of the cgroup children are created in.
	Parent string
}

// Detect finds the memory cgroup of the current process from
// /proc/self/cgroup and /proc/self/mountinfo. It prefers v2 when the unified
// hierarchy offers the memory controller to the process's cgroup.
func Detect() (Hierarchy, error) {
	cg, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return Hierarchy{}, fmt.Errorf("cgroup: detect: %w", err)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return Hierarchy{}, fmt.Errorf("cgroup: detect: %w", err)
	}
	return DetectFrom(string(cg), string(mi), "")
}

// DetectFrom is Detect over the given contents of /proc/self/cgroup and
// /proc/self/mountinfo. Mount points are joined under fsRoot (empty for the
// real filesystem, a test directory for a fake tree).
func DetectFrom(procCgroup, mountinfo, fsRoot string) (Hierarchy, error) {
	var v2Path, v1Path string
	haveV2, haveV1 := false, false
	for _, line := range strings.Split(procCgroup, "\n") {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2Path, haveV2 = parts[2], true
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				v1Path, haveV1 = parts[2], true
			}
		}
	}
	var v2Mount, v2Root, v1Mount, v1Root string
	for _, line := range strings.Split(mountinfo, "\n") {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 1 {
			continue
		}
		switch g[0] {
		case "cgroup2":
			if v2Mount == "" {
				v2Mount, v2Root = unescape(f[4]), unescape(f[3])
			}
		case "cgroup":
			if len(g) >= 3 && hasOpt(g[2], "memory") && v1Mount == "" {
				v1Mount, v1Root = unescape(f[4]), unescape(f[3])
			}
		}
	}
	if haveV2 && v2Mount != "" {
		dir := join(fsRoot, v2Mount, v2Root, v2Path)
		// After Prepare moved us into the leaf, children go next to the leaf.
		if filepath.Base(dir) == LeafName && hasWord(readString(filepath.Join(filepath.Dir(dir), "cgroup.subtree_control")), "memory") {
			dir = filepath.Dir(dir)
		}
		if hasWord(readString(filepath.Join(dir, "cgroup.controllers")), "memory") {
			return Hierarchy{Version: V2, Parent: dir}, nil
		}
	}
	if haveV1 && v1Mount != "" {
		dir := join(fsRoot, v1Mount, v1Root, v1Path)
		if _, err := os.Stat(filepath.Join(dir, "memory.limit_in_bytes")); err == nil {
			return Hierarchy{Version: V1, Parent: dir}, nil
		}
	}
	return Hierarchy{}, fmt.Errorf("%w: v2 memory controller not offered to this cgroup and no v1 memory hierarchy found", ErrUnavailable)
}

func join(fsRoot, mount, mountRoot, path string) string {
	rel := path
	if mountRoot != "/" && (path == mountRoot || strings.HasPrefix(path, mountRoot+"/")) {
		rel = strings.TrimPrefix(path, mountRoot)
	}
	return filepath.Join(fsRoot, mount, rel)
}

func unescape(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

func hasOpt(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

func hasWord(s, want string) bool {
	for _, w := range strings.Fields(s) {
		if strings.TrimPrefix(w, "+") == want {
			return true
		}
	}
	return false
}

func readString(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

// Prepare makes Parent ready to hold memory-limited children. On v1 it checks
// that Parent is writable. On v2 it enables the memory controller in Parent's
// cgroup.subtree_control; because a v2 cgroup with processes may not enable
// controllers for its children ("no internal processes"), it first moves every
// process of Parent into the leaf Parent/dagrun-worker. It returns the pids it
// moved.
func (h Hierarchy) Prepare() (moved []int, err error) {
	if h.Version == V1 {
		if err := syscall.Access(h.Parent, 2 /* W_OK */); err != nil {
			return nil, fmt.Errorf("cgroup: %s not writable: %w", h.Parent, err)
		}
		return nil, nil
	}
	sc := filepath.Join(h.Parent, "cgroup.subtree_control")
	if hasWord(readString(sc), "memory") {
		return nil, nil
	}
	pids, err := readPids(filepath.Join(h.Parent, "cgroup.procs"))
	if err != nil {
		return nil, fmt.Errorf("cgroup: prepare %s: %w", h.Parent, err)
	}
	if len(pids) > 0 {
		leaf := filepath.Join(h.Parent, LeafName)
		if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("cgroup: prepare: create leaf: %w", err)
		}
		for _, pid := range pids {
			if err := appendFile(filepath.Join(leaf, "cgroup.procs"), strconv.Itoa(pid)); err != nil && !errors.Is(err, syscall.ESRCH) {
				return moved, fmt.Errorf("cgroup: prepare: move pid %d into %s: %w", pid, leaf, err)
			}
			moved = append(moved, pid)
		}
	}
	if err := writeFile(sc, "+memory"); err != nil {
		return moved, fmt.Errorf("cgroup: prepare: enable memory controller in %s: %w", sc, err)
	}
	return moved, nil
}

// Group is one child cgroup.
type Group struct {
	// Dir is the cgroup's directory.
	Dir string
	// Version is its hierarchy layout.
	Version Version
	// Limit is the memory limit written, in bytes.
	Limit int64
}

// Create makes the child cgroup Parent/name with the given memory limit
// (bytes; 0 means no limit). v2: memory.max, memory.swap.max=0,
// memory.oom.group=1. v1: memory.limit_in_bytes and, where swap accounting
// exists, memory.memsw.limit_in_bytes. A failure removes the half-made group.
func (h Hierarchy) Create(name string, limit int64) (*Group, error) {
	g := &Group{Dir: filepath.Join(h.Parent, name), Version: h.Version, Limit: limit}
	if err := os.Mkdir(g.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("cgroup: create %s: %w", g.Dir, err)
	}
	if err := g.configure(); err != nil {
		_ = g.Remove(time.Second)
		return nil, err
	}
	return g, nil
}

func (g *Group) configure() error {
	lim := "max"
	if g.Limit > 0 {
		lim = strconv.FormatInt(g.Limit, 10)
	}
	switch g.Version {
	case V2:
		if err := writeFile(filepath.Join(g.Dir, "memory.max"), lim); err != nil {
			return fmt.Errorf("cgroup: set memory.max=%s in %s: %w", lim, g.Dir, err)
		}
		// swap.max is absent without swap accounting; nothing to cap then.
		if err := writeFile(filepath.Join(g.Dir, "memory.swap.max"), "0"); err != nil && !isNotExist(err) {
			return fmt.Errorf("cgroup: set memory.swap.max=0 in %s: %w", g.Dir, err)
		}
		if err := writeFile(filepath.Join(g.Dir, "memory.oom.group"), "1"); err != nil && !isNotExist(err) {
			return fmt.Errorf("cgroup: set memory.oom.group=1 in %s: %w", g.Dir, err)
		}
	case V1:
		if g.Limit <= 0 {
			return nil
		}
		if err := writeFile(filepath.Join(g.Dir, "memory.limit_in_bytes"), lim); err != nil {
			return fmt.Errorf("cgroup: set memory.limit_in_bytes=%s in %s: %w", lim, g.Dir, err)
		}
		// memsw must be >= the memory limit, so it is written second.
		if _, err := os.Stat(filepath.Join(filepath.Dir(g.Dir), "memory.memsw.limit_in_bytes")); err == nil {
			if err := writeFile(filepath.Join(g.Dir, "memory.memsw.limit_in_bytes"), lim); err != nil {
				return fmt.Errorf("cgroup: set memory.memsw.limit_in_bytes=%s in %s: %w", lim, g.Dir, err)
			}
		}
	}
	return nil
}

// Open returns the cgroup directory opened for SysProcAttr.CgroupFD (v2).
// The caller closes it.
func (g *Group) Open() (*os.File, error) {
	f, err := os.OpenFile(g.Dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("cgroup: open %s: %w", g.Dir, err)
	}
	return f, nil
}

// AddProc moves pid into the group.
func (g *Group) AddProc(pid int) error {
	if err := appendFile(filepath.Join(g.Dir, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
		return fmt.Errorf("cgroup: move pid %d into %s: %w", pid, g.Dir, err)
	}
	return nil
}

// Procs lists the pids in the group.
func (g *Group) Procs() ([]int, error) {
	return readPids(filepath.Join(g.Dir, "cgroup.procs"))
}

// Peak returns the kernel's high-water mark of the group's memory
// (v2 memory.peak, v1 memory.max_usage_in_bytes). ok is false when the kernel
// has no such file (v2 before Linux 5.19).
func (g *Group) Peak() (peak int64, ok bool, err error) {
	name := "memory.peak"
	if g.Version == V1 {
		name = "memory.max_usage_in_bytes"
	}
	n, err := readInt(filepath.Join(g.Dir, name))
	if isNotExist(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("cgroup: read %s in %s: %w", name, g.Dir, err)
	}
	return n, true, nil
}

// Current returns the group's current memory usage.
func (g *Group) Current() (int64, error) {
	name := "memory.current"
	if g.Version == V1 {
		name = "memory.usage_in_bytes"
	}
	n, err := readInt(filepath.Join(g.Dir, name))
	if err != nil {
		return 0, fmt.Errorf("cgroup: read %s in %s: %w", name, g.Dir, err)
	}
	return n, nil
}

// Events is the OOM accounting of a group.
type Events struct {
	// OOMKills counts processes the kernel OOM killer killed in the group
	// (v2 memory.events oom_kill, v1 memory.oom_control oom_kill).
	OOMKills int64
	// LimitHits counts allocations that hit the limit (v2 memory.events
	// max, v1 memory.failcnt).
	LimitHits int64
}

// Events reads the group's OOM counters.
func (g *Group) Events() (Events, error) {
	var e Events
	switch g.Version {
	case V2:
		kv, err := readKV(filepath.Join(g.Dir, "memory.events"))
		if err != nil {
			return e, fmt.Errorf("cgroup: read memory.events in %s: %w", g.Dir, err)
		}
		e.OOMKills, e.LimitHits = kv["oom_kill"], kv["max"]
	case V1:
		kv, err := readKV(filepath.Join(g.Dir, "memory.oom_control"))
		if err != nil {
			return e, fmt.Errorf("cgroup: read memory.oom_control in %s: %w", g.Dir, err)
		}
		e.OOMKills = kv["oom_kill"]
		if n, err := readInt(filepath.Join(g.Dir, "memory.failcnt")); err == nil {
			e.LimitHits = n
		}
	}
	return e, nil
}

// Kill sends SIGKILL to every process in the group: v2 through cgroup.kill
// (Linux 5.14+), otherwise by signalling each listed pid until the group is
// empty or the deadline passes. Processes forking while being killed are
// caught by the repeated listing.
func (g *Group) Kill(timeout time.Duration) error {
	if g.Version == V2 {
		if err := writeFile(filepath.Join(g.Dir, "cgroup.kill"), "1"); err == nil {
			return g.waitEmpty(timeout)
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		pids, err := g.Procs()
		if err != nil {
			if isNotExist(err) {
				return nil
			}
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup: %d processes still in %s after SIGKILL", len(pids), g.Dir)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (g *Group) waitEmpty(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pids, err := g.Procs()
		if err != nil || len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup: %d processes still in %s after cgroup.kill", len(pids), g.Dir)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Remove kills what is left in the group and removes its directory, retrying
// while the kernel still tears down exiting processes. On a fake tree (plain
// files) the files are removed too.
func (g *Group) Remove(timeout time.Duration) error {
	kerr := g.Kill(timeout)
	deadline := time.Now().Add(timeout)
	for {
		err := os.Remove(g.Dir)
		if err == nil || isNotExist(err) {
			return nil
		}
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			if !isCgroupFS(g.Dir) {
				return os.RemoveAll(g.Dir)
			}
		}
		if time.Now().After(deadline) {
			return errors.Join(kerr, fmt.Errorf("cgroup: remove %s: %w", g.Dir, err))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const (
	cgroupSuperMagic  = 0x27e0eb
	cgroup2SuperMagic = 0x63677270
)

func isCgroupFS(dir string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return false
	}
	return st.Type == cgroupSuperMagic || st.Type == cgroup2SuperMagic
}

func isNotExist(err error) bool {
	return err != nil && (errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENODEV))
}

// writeFile writes v to an existing control file (creating it on a fake tree).
func writeFile(path, v string) error {
	flag := os.O_WRONLY | os.O_TRUNC
	if !isCgroupFS(filepath.Dir(path)) {
		flag |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(v)
	return errors.Join(err, f.Close())
}

// appendFile writes one line to cgroup.procs-like files; on a fake tree the
// lines accumulate so tests can see every pid written.
func appendFile(path, v string) error {
	flag := os.O_WRONLY | os.O_APPEND
	if !isCgroupFS(filepath.Dir(path)) {
		flag |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(v + "\n")
	return errors.Join(err, f.Close())
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return -1, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return n, nil
}

func readKV(path string) (map[string]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseKV(f)
}

func parseKV(r io.Reader) (map[string]int64, error) {
	kv := map[string]int64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			kv[k] = n
		}
	}
	return kv, sc.Err()
}

func readPids(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids, nil
}

// Stale lists child cgroups of Parent whose names start with prefix and end
// in "-<pid>-<n>" for a pid that no longer runs: leftovers of a worker that
// was killed before it could clean up.
func (h Hierarchy) Stale(prefix string) ([]*Group, error) {
	ents, err := os.ReadDir(h.Parent)
	if err != nil {
		return nil, fmt.Errorf("cgroup: list %s: %w", h.Parent, err)
	}
	var out []*Group
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		rest := strings.Split(strings.TrimPrefix(e.Name(), prefix), "-")
		if len(rest) != 2 {
			continue
		}
		pid, err := strconv.Atoi(rest[0])
		if err != nil || pid <= 0 {
			continue
		}
		if pid == os.Getpid() || syscall.Kill(pid, 0) == nil || errors.Is(syscall.Kill(pid, 0), syscall.EPERM) {
			continue
		}
		out = append(out, &Group{Dir: filepath.Join(h.Parent, e.Name()), Version: h.Version})
	}
	return out, nil
}
