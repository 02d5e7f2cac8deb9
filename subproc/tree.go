package subproc

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"
)

// procInfo is what the tree sampler needs from /proc/<pid>/stat.
type procInfo struct {
	ppid, pgrp int
	start      uint64 // start time in clock ticks: tells a reused pid apart
	state      byte
}

func readStat(pid int) (procInfo, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}, false
	}
	// comm may contain spaces and parentheses: fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return procInfo{}, false
	}
	f := bytes.Fields(b[i+2:])
	// f[0]=state f[1]=ppid f[2]=pgrp ... f[19]=starttime
	if len(f) < 20 {
		return procInfo{}, false
	}
	ppid, _ := strconv.Atoi(string(f[1]))
	pgrp, _ := strconv.Atoi(string(f[2]))
	start, _ := strconv.ParseUint(string(f[19]), 10, 64)
	return procInfo{ppid: ppid, pgrp: pgrp, start: start, state: f[0][0]}, true
}

// tree tracks the processes of one child: the root, members of its process
// group and their descendants. Not safe for concurrent use.
type tree struct {
	root int
	seen map[int]uint64 // pid -> start time of every member ever seen
}

func newTree(root int) *tree {
	t := &tree{root: root, seen: map[int]uint64{}}
	if pi, ok := readStat(root); ok {
		t.seen[root] = pi.start
	}
	return t
}

// members scans /proc and returns the live members of the tree.
func (t *tree) members() []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	children := map[int][]int{}
	var out []int
	in := map[int]bool{}
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		pi, ok := readStat(pid)
		if !ok || pi.state == 'Z' {
			continue
		}
		children[pi.ppid] = append(children[pi.ppid], pid)
		if start, ok := t.seen[pid]; (pi.pgrp == t.root || ok && start == pi.start) && !in[pid] {
			in[pid] = true
			out = append(out, pid)
			t.seen[pid] = pi.start
		}
	}
	// Descendants of any member (they may have left the process group).
	for i := 0; i < len(out); i++ {
		for _, c := range children[out[i]] {
			if !in[c] {
				in[c] = true
				out = append(out, c)
				if pi, ok := readStat(c); ok {
					t.seen[c] = pi.start
				}
			}
		}
	}
	return out
}

// killAll SIGKILLs the process group and every member ever seen that still
// runs with the same start time.
func (t *tree) killAll() {
	_ = syscall.Kill(-t.root, syscall.SIGKILL)
	for _, pid := range t.members() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	// SIGKILL is delivered asynchronously: wait (bounded) until every member
	// ever seen is gone or a zombie, re-signalling stragglers.
	deadline := time.Now().Add(2 * time.Second)
	for {
		alive := 0
		for pid, start := range t.seen {
			if pi, ok := readStat(pid); ok && pi.start == start && pi.state != 'Z' && pi.state != 'X' {
				alive++
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if alive == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

var pageSize = int64(os.Getpagesize())

// memory returns the summed memory of pids as the kernel would charge it to
// a cgroup: anonymous plus shmem PSS from /proc/<pid>/smaps_rollup
// (Pss_Anon + Pss_Shmem, Linux 5.8+), else the whole PSS (4.14+), else RSS
// from statm. File-backed pages (the node binary, shared libraries) are left
// out where the kernel allows, since they are shared, reclaimable and usually
// charged to whoever read them first.
func memory(pids []int) int64 {
	var total int64
	for _, pid := range pids {
		total += pss(pid)
	}
	return total
}

func field(b []byte, name string) (int64, bool) {
	i := bytes.Index(b, []byte("\n"+name+":"))
	if i < 0 {
		return 0, false
	}
	f := bytes.Fields(b[i+len(name)+2:])
	if len(f) == 0 {
		return 0, false
	}
	kb, err := strconv.ParseInt(string(f[0]), 10, 64)
	return kb * 1024, err == nil
}

func pss(pid int) int64 {
	p := "/proc/" + strconv.Itoa(pid)
	if b, err := os.ReadFile(p + "/smaps_rollup"); err == nil {
		if anon, ok := field(b, "Pss_Anon"); ok {
			shmem, _ := field(b, "Pss_Shmem")
			return anon + shmem
		}
		if v, ok := field(b, "Pss"); ok {
			return v
		}
	}
	if b, err := os.ReadFile(p + "/statm"); err == nil {
		f := bytes.Fields(b)
		if len(f) > 1 {
			pages, _ := strconv.ParseInt(string(f[1]), 10, 64)
			return pages * pageSize
		}
	}
	return 0
}
