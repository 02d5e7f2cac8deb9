// Package budgettest gives in-process worker tests a memory cgroup of their
// own to read, so that admission does not depend on what else the machine
// is doing: the real container cgroup of a test process counts every other
// process and the page cache of the build.
package budgettest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dagrun/dagrun/budget"
)

// Quiet returns a budget.Config reading a cgroup v2 directory (in a temp
// dir) with the given budget as the limit and a steady working set of
// 16 MiB, like a quiet worker process; the returned func changes the
// working set.
func Quiet(t testing.TB, limit uint64) (budget.Config, func(used uint64)) {
	t.Helper()
	dir := t.TempDir()
	write := func(name, v string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("memory.current", "16777216")
	write("memory.max", "max")
	write("memory.stat", "inactive_file 0")
	set := func(used uint64) {
		tmp := filepath.Join(dir, "memory.current.tmp")
		os.WriteFile(tmp, []byte(uitoa(used)+"\n"), 0o644)
		os.Rename(tmp, filepath.Join(dir, "memory.current"))
	}
	return budget.Config{Dir: dir, Budget: limit}, set
}

func uitoa(v uint64) string {
	if v == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[i:])
}
