// Command dagrun-fixtures writes generated fixtures.
//
//	dagrun-fixtures -small -out testdata/fixtures   # the committed small fixtures
//	dagrun-fixtures -out /tmp/fx 'PreK List.xlsx'  # named fixtures
//	dagrun-fixtures -all -out /tmp/fx              # everything
//	dagrun-fixtures -list
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dagrun/dagrun/internal/fixture"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "dagrun-fixtures:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dagrun-fixtures", flag.ContinueOnError)
	out := fs.String("out", ".", "output directory")
	small := fs.Bool("small", false, "write the small (committed) fixtures")
	all := fs.Bool("all", false, "write every fixture")
	list := fs.Bool("list", false, "list fixtures")
	if err := fs.Parse(args); err != nil {
		return err
	}
	names := fs.Args()
	for _, s := range fixture.Specs() {
		if *list {
			fmt.Printf("%-34s target=%d small=%v\n", s.Name, s.Target, s.Small)
		}
		if *all || (*small && s.Small) {
			names = append(names, s.Name)
		}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for _, n := range names {
		p := filepath.Join(*out, n)
		if err := fixture.WriteFile(ctx, n, p); err != nil {
			return err
		}
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		fmt.Printf("%s\t%d\n", p, st.Size())
	}
	return nil
}
