package cli

import (
	"context"
	"os"
	"testing"
)

// TestMain lets tests run this test binary as the dagrun command (a real
// separate process that can be SIGKILLed): DAGRUN_AS_CLI=1 makes it one.
func TestMain(m *testing.M) {
	if os.Getenv("DAGRUN_AS_CLI") == "1" {
		os.Exit(Main(context.Background(), os.Args[1:], &Env{Stdout: os.Stdout, Stderr: os.Stderr}))
	}
	os.Exit(m.Run())
}
