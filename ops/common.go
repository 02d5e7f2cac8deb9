package ops

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dagrun/dagrun/worker"
)

// Errors callers branch on; both come wrapped in an *ExitError.
var (
	// ErrUsage: bad command line (exit code 2).
	ErrUsage = errors.New("usage")
	// ErrProblems: doctor found problems (exit code 1).
	ErrProblems = errors.New("problems found")
)

// ExitError is an error with the process exit code the CLI should use.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode is the exit status for the error.
func (e *ExitError) ExitCode() int { return e.Code }

func usagef(format string, a ...any) error {
	return &ExitError{Code: 2, Err: fmt.Errorf("%w: "+format, append([]any{ErrUsage}, a...)...)}
}

// DefaultRedisURL is used when neither --redis nor $DAGRUN_REDIS is set.
const DefaultRedisURL = "redis://127.0.0.1:6379"

// common holds the flags every command shares.
type common struct {
	redisURL string
	queue    string
	json     bool
	stdout   io.Writer
}

func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *common) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &common{}
	def := os.Getenv("DAGRUN_REDIS")
	if def == "" {
		def = DefaultRedisURL
	}
	fs.StringVar(&c.redisURL, "redis", def, "Redis URL (redis://[user:pass@]host:port/db, rediss:// for TLS; default $DAGRUN_REDIS)")
	fs.StringVar(&c.queue, "queue", worker.DefaultQueue, "queue name")
	fs.BoolVar(&c.json, "json", false, "print JSON")
	return fs, c
}

// parse parses flags anywhere among args and returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, &ExitError{Code: 0, Err: err}
			}
			return nil, &ExitError{Code: 2, Err: fmt.Errorf("%w: %v", ErrUsage, err)}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// connect opens the Redis client of c; the caller closes it.
func (c *common) connect() (*redis.Client, error) {
	u := c.redisURL
	if !strings.Contains(u, "://") {
		u = "redis://" + u
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		return nil, usagef("--redis %q: %v", c.redisURL, err)
	}
	opt.DialTimeout = 2 * time.Second
	opt.ReadTimeout = 5 * time.Second
	opt.MaxRetries = 1
	return redis.NewClient(opt), nil
}

func (c *common) open(ctx context.Context) (*redis.Client, *worker.Queue, error) {
	rdb, err := c.connect()
	if err != nil {
		return nil, nil, err
	}
	return rdb, worker.NewQueue(rdb, c.queue), nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// bytesH formats a byte count for humans ("-" for 0).
func bytesH(n int64) string {
	const k = 1024
	switch {
	case n <= 0:
		return "-"
	case n < k*k:
		return fmt.Sprintf("%d B", n)
	case n < k*k*k:
		return fmt.Sprintf("%.1f MiB", float64(n)/(k*k))
	}
	return fmt.Sprintf("%.2f GiB", float64(n)/(k*k*k))
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

func trunc(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

func operator() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "operator"
}
