// Command dagrun runs workflows, workers and benchmarks; see package cli.
package main

import (
	"os"

	"github.com/dagrun/dagrun/cli"
)

func main() { os.Exit(cli.Process()) }
