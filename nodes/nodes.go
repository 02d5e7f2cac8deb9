// Package nodes holds dagrun's built-in node types: files, CSV and office
// documents, table transforms, templates, model calls, HTTP tool calls and
// child processes. Register adds them to a dag.Registry.
//
// Types that read files stream them (rows, pages, slides) unless
// Options.WholeFile asks for the incident's way of reading everything first,
// which exists only to measure the difference.
package nodes

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/dagrun/dagrun/dag"
	"github.com/dagrun/dagrun/subproc"
)

// Options configure the built-in node types. The zero value is usable.
type Options struct {
	// BaseDir resolves relative file paths in params (default: the current
	// directory). The CLI sets it to the workflow file's directory.
	BaseDir string
	// WholeFile makes file readers load the whole file into memory before
	// parsing, as the incident's workers did (for benchmarks).
	WholeFile bool
	// HTTPClient is used by http.request and llm.chat (default: a client
	// with no global timeout; nodes apply their own).
	HTTPClient *http.Client
	// Getenv reads API keys and allow-listed environment (default os.Getenv).
	Getenv func(string) string
	// ChildMode selects how child processes are bounded (default: auto,
	// cgroup where writable, else a watchdog).
	ChildMode subproc.Mode
	// CgroupParent is the cgroup under which child cgroups are created
	// (default: the worker's own).
	CgroupParent string
	// Reserve, when set, reserves a child's memory budget from the run's
	// budget while it runs.
	Reserve func(ctx context.Context, bytes int64) (release func(), err error)
	// Approver answers human.approval nodes; nil approves at once.
	Approver Approver
	// Logger receives node logs (default: discard).
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// path resolves a params path against BaseDir.
func (o *Options) path(p string) string {
	if p == "" || filepath.IsAbs(p) || o.BaseDir == "" {
		return p
	}
	return filepath.Join(o.BaseDir, p)
}

// Register adds every built-in node type to reg.
func Register(reg *dag.Registry, opts Options) error {
	opts.defaults()
	for _, t := range All(&opts) {
		if err := reg.Register(t); err != nil {
			return err
		}
	}
	return nil
}

// NewRegistry returns a registry with every built-in type.
func NewRegistry(opts Options) *dag.Registry {
	reg := dag.NewRegistry()
	if err := Register(reg, opts); err != nil {
		panic(err) // built-in names are unique
	}
	return reg
}

// All returns the built-in types configured with opts.
func All(opts *Options) []dag.Type {
	return []dag.Type{
		fileReadType(opts), fileWriteType(opts), csvReadType(opts),
		xlsxReadType(opts), pdfReadType(opts), pptxReadType(opts), docxReadType(opts),
		approvalType(opts),
		tableFilterType(), tableSelectType(), tableAggregateType(), tableHeadType(),
		textTemplateType(opts),
		llmMockType(opts), llmChatType(opts), httpRequestType(opts),
		nodeScriptType(opts), execType(opts),
	}
}
