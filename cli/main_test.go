package cli

import (
	"os"
	"testing"
)

// TestMain lets tests run this test binary as the dagrun command (a real
// separate process that can be SIGKILLed): DAGRUN_AS_CLI=1 makes it one.
func TestMain(m *testing.M) {
	if os.Getenv("DAGRUN_AS_CLI") == "1" {
		os.Exit(Process())
	}
	os.Exit(m.Run())
}
