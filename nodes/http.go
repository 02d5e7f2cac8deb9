package nodes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dagrun/dagrun/dag"
)

// HTTPError is a response of http.request or llm.chat whose status was not
// accepted. It carries the status and a bounded excerpt of the body, never
// the whole body. Errors for 408, 429 and 5xx are retryable; the executor
// sees other statuses wrapped with dag.Permanent.
type HTTPError struct {
	// Node is the id of the node that made the request.
	Node string
	// Method and URL name the request (the URL without its query string).
	Method, URL string
	// Status is the HTTP status code.
	Status int
	// Body is the start of the response body, at most BodyExcerptBytes.
	Body string
	// Truncated reports that the body was longer than Body.
	Truncated bool
	// RetryAfter is the response's Retry-After header, if any.
	RetryAfter string
}

// BodyExcerptBytes bounds HTTPError.Body.
const BodyExcerptBytes = 1024

// Error names the node, request and status, with the body excerpt.
func (e *HTTPError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "node %q: %s %s: HTTP %d %s", e.Node, e.Method, e.URL, e.Status, http.StatusText(e.Status))
	if e.RetryAfter != "" {
		fmt.Fprintf(&b, " (Retry-After %s)", e.RetryAfter)
	}
	if body := strings.TrimSpace(e.Body); body != "" {
		fmt.Fprintf(&b, ": %s", body)
		if e.Truncated {
			b.WriteString("...")
		}
	}
	return b.String()
}

// Retryable reports whether the status is worth retrying (408, 429, 5xx).
func (e *HTTPError) Retryable() bool { return retryableStatus(e.Status) }

func retryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}

// ErrResponseTooLarge is wrapped by the error of http.request and llm.chat
// when a response or reply passes its byte limit.
var ErrResponseTooLarge = errors.New("response too large")

// statusError reads a bounded excerpt of resp's body and returns an
// *HTTPError, wrapped with dag.Permanent unless the status is retryable.
func statusError(node, method string, u *url.URL, resp *http.Response) error {
	buf := make([]byte, BodyExcerptBytes+1)
	n, _ := io.ReadFull(resp.Body, buf)
	body := buf[:n]
	e := &HTTPError{Node: node, Method: method, URL: redactURL(u), Status: resp.StatusCode,
		RetryAfter: resp.Header.Get("Retry-After")}
	if len(body) > BodyExcerptBytes {
		body, e.Truncated = body[:BodyExcerptBytes], true
		for len(body) > 0 && !utf8.Valid(body) { // do not cut a rune in half
			body = body[:len(body)-1]
		}
	}
	e.Body = strings.ToValidUTF8(string(body), "\uFFFD")
	if e.Retryable() {
		return e
	}
	return dag.Permanent(e)
}

// redactURL returns u without its query and user info, for error messages.
func redactURL(u *url.URL) string {
	c := *u
	c.RawQuery, c.User, c.Fragment = "", nil, ""
	return c.String()
}

// inputsReader streams a node's inputs one after the other, opening each only
// when the previous one is exhausted. Tables are read as JSON lines. Read and
// Close may be called from different goroutines (an HTTP transport closes a
// request body from its own); Closed is closed after the first Close.
type inputsReader struct {
	ctx    context.Context
	inputs []*dag.Input
	sep    string // written between inputs

	mu     sync.Mutex
	next   int
	cur    io.ReadCloser
	pend   string // separator bytes still to return
	n      int64
	closed bool
	done   chan struct{}
}

func newInputsReader(ctx context.Context, in *dag.Inputs, sep string) *inputsReader {
	return &inputsReader{ctx: ctx, inputs: in.All(), sep: sep, done: make(chan struct{})}
}

func (r *inputsReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		if r.closed {
			return 0, errors.New("inputs reader closed")
		}
		if r.pend != "" {
			n := copy(p, r.pend)
			r.pend = r.pend[n:]
			r.n += int64(n)
			return n, nil
		}
		if r.cur == nil {
			if r.next >= len(r.inputs) {
				return 0, io.EOF
			}
			in := r.inputs[r.next]
			rc, err := in.Open(r.ctx)
			if err != nil {
				return 0, fmt.Errorf("open input %q: %w", in.NodeID(), err)
			}
			if r.next > 0 {
				r.pend = r.sep
			}
			r.cur = rc
			r.next++
			continue
		}
		n, err := r.cur.Read(p)
		r.n += int64(n)
		if err == io.EOF {
			r.cur.Close()
			r.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		if err != nil {
			err = fmt.Errorf("read input %q: %w", r.inputs[r.next-1].NodeID(), err)
		}
		return n, err
	}
}

// Bytes returns how many bytes were read so far.
func (r *inputsReader) Bytes() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

func (r *inputsReader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	if r.cur != nil {
		r.cur.Close()
		r.cur = nil
	}
	close(r.done)
	return nil
}

// limitWriter passes at most limit bytes to w and fails with
// ErrResponseTooLarge on the first byte past it.
type limitWriter struct {
	w     io.Writer
	limit int64
	n     int64
	what  string // "response of GET http://..."
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n+int64(len(p)) > l.limit {
		return 0, fmt.Errorf("%s passed the limit of %s (%d bytes): %w", l.what, dag.FormatBytes(l.limit), l.limit, ErrResponseTooLarge)
	}
	n, err := l.w.Write(p)
	l.n += int64(n)
	return n, err
}

// envRef matches ${NAME} references in header values.
var envRef = regexp.MustCompile(`\$\{([^}]*)\}`)

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

type httpRequestParams struct {
	Method           string            `json:"method"`
	URL              string            `json:"url"`
	Query            map[string]string `json:"query"`
	Headers          map[string]string `json:"headers"`
	Body             *string           `json:"body"`
	BodyFromInputs   bool              `json:"body_from_inputs"`
	Timeout          dag.Duration      `json:"timeout"`
	MaxResponseBytes dag.ByteSize      `json:"max_response_bytes"`
	ExpectStatus     []int             `json:"expect_status"`
}

const (
	defaultHTTPTimeout  = 30 * time.Second
	defaultMaxResponse  = 32 << 20
	defaultMaxReplyLLM  = 16 << 20
	defaultLLMTimeout   = 5 * time.Minute
	defaultLLMMaxTokens = 1024
)

func httpRequestType(opts *Options) dag.Type {
	return dag.Type{
		Name: "http.request",
		Doc: "Calls an HTTP endpoint (a tool call) and streams the response body into the output, " +
			"failing on an unexpected status (with a bounded body excerpt) or a body over max_response_bytes.",
		Output:       dag.KindBytes,
		StreamsInput: true,
		MinInputs:    0,
		MaxInputs:    -1,
		Params: []dag.Param{
			{Name: "method", Type: "string", Default: "GET", Doc: "HTTP method."},
			{Name: "url", Type: "string", Required: true, Doc: "Absolute http or https URL."},
			{Name: "query", Type: "object", Doc: "Query parameters added to the URL (string values)."},
			{Name: "headers", Type: "object", Doc: "Request headers; ${NAME} in a value is replaced by the environment variable NAME (an unset variable is an error)."},
			{Name: "body", Type: "string", Doc: "Request body (exclusive with body_from_inputs)."},
			{Name: "body_from_inputs", Type: "boolean", Default: "false", Doc: "Stream the inputs, in order, as the request body (tables as JSON lines)."},
			{Name: "timeout", Type: "duration", Default: "30s", Doc: "Bound on the whole request, body included."},
			{Name: "max_response_bytes", Type: "bytesize", Default: "32MiB", Doc: "Largest accepted response body; a larger one fails the node after reading at most one byte more."},
			{Name: "expect_status", Type: "array", Default: "any 2xx", Doc: "Accepted status codes."},
		},
		New: func(spec *dag.NodeSpec) (dag.Node, error) {
			var p httpRequestParams
			if err := dag.DecodeParams(spec.Params, &p); err != nil {
				return nil, err
			}
			h, err := newHTTPRequest(opts, p)
			if err != nil {
				return nil, err
			}
			return h, nil
		},
	}
}

type httpRequest struct {
	opts    *Options
	p       httpRequestParams
	u       *url.URL
	timeout time.Duration
	limit   int64
}

func newHTTPRequest(opts *Options, p httpRequestParams) (*httpRequest, error) {
	var errs []error
	if p.Method == "" {
		p.Method = http.MethodGet
	}
	p.Method = strings.ToUpper(p.Method)
	if !validToken(p.Method) {
		errs = append(errs, &dag.ParamError{Field: "method", Message: fmt.Sprintf("%q is not an HTTP method", p.Method)})
	}
	var u *url.URL
	if err := dag.Require("url", p.URL); err != nil {
		errs = append(errs, err)
	} else if pu, err := url.Parse(p.URL); err != nil {
		errs = append(errs, &dag.ParamError{Field: "url", Message: err.Error()})
	} else if pu.Scheme != "http" && pu.Scheme != "https" || pu.Host == "" {
		errs = append(errs, &dag.ParamError{Field: "url", Message: fmt.Sprintf("%q is not an absolute http(s) URL", p.URL)})
	} else {
		if len(p.Query) > 0 {
			q := pu.Query()
			for _, k := range sortedKeys(p.Query) {
				q.Add(k, p.Query[k])
			}
			pu.RawQuery = q.Encode()
		}
		u = pu
	}
	for _, k := range sortedKeys(p.Headers) {
		if !validToken(k) {
			errs = append(errs, &dag.ParamError{Field: "headers." + k, Message: "not a valid header name"})
		}
		for _, m := range envRef.FindAllStringSubmatch(p.Headers[k], -1) {
			if !envName.MatchString(m[1]) {
				errs = append(errs, &dag.ParamError{Field: "headers." + k, Message: fmt.Sprintf("${%s} is not a valid environment variable name", m[1])})
			}
		}
	}
	if p.Body != nil && p.BodyFromInputs {
		errs = append(errs, &dag.ParamError{Field: "body", Message: "body and body_from_inputs are exclusive"})
	}
	for i, s := range p.ExpectStatus {
		if s < 100 || s > 599 {
			errs = append(errs, &dag.ParamError{Field: fmt.Sprintf("expect_status[%d]", i), Message: fmt.Sprintf("%d is not an HTTP status", s)})
		}
	}
	if p.MaxResponseBytes < 0 {
		errs = append(errs, &dag.ParamError{Field: "max_response_bytes", Message: "must be positive"})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	h := &httpRequest{opts: opts, p: p, u: u, timeout: time.Duration(p.Timeout), limit: int64(p.MaxResponseBytes)}
	if h.timeout == 0 {
		h.timeout = defaultHTTPTimeout
	}
	if h.limit == 0 {
		h.limit = defaultMaxResponse
	}
	return h, nil
}

func (h *httpRequest) Run(ctx context.Context, in *dag.Inputs, out *dag.Output) error {
	node := out.NodeID()
	target := h.p.Method + " " + redactURL(h.u)
	ctx, cancel := context.WithTimeoutCause(ctx, h.timeout, fmt.Errorf("%s: no complete response within timeout %s: %w", target, h.timeout, context.DeadlineExceeded))
	defer cancel()

	headers := http.Header{}
	for _, k := range sortedKeys(h.p.Headers) {
		v, err := expandEnv(h.opts.Getenv, h.p.Headers[k])
		if err != nil {
			return dag.Permanent(fmt.Errorf("node %q: header %s: %w", node, k, err))
		}
		headers.Set(k, v)
	}

	var body io.Reader
	var ir *inputsReader
	switch {
	case h.p.BodyFromInputs:
		ir = newInputsReader(ctx, in, "")
		body = ir
	case h.p.Body != nil:
		body = strings.NewReader(*h.p.Body)
	}
	req, err := http.NewRequestWithContext(ctx, h.p.Method, h.u.String(), body)
	if err != nil {
		return dag.Permanent(fmt.Errorf("node %q: %s: %w", node, target, err))
	}
	req.Header = headers
	if ir != nil {
		req.ContentLength = -1 // chunked: the inputs are streamed, never held whole
		defer waitBodyClosed(ir, cancel)
	}
	resp, err := h.opts.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("node %q: %s: %w", node, target, contextErr(ctx, err))
	}
	defer resp.Body.Close()
	if !h.accepts(resp.StatusCode) {
		return statusError(node, h.p.Method, h.u, resp)
	}
	if resp.ContentLength > h.limit {
		return dag.Permanent(fmt.Errorf("node %q: response of %s declares %d bytes, over max_response_bytes %s (%d bytes): %w",
			node, target, resp.ContentLength, dag.FormatBytes(h.limit), h.limit, ErrResponseTooLarge))
	}
	w, err := out.Writer()
	if err != nil {
		return err
	}
	lw := &limitWriter{w: w, limit: h.limit, what: fmt.Sprintf("node %q: response of %s (max_response_bytes)", node, target)}
	n, err := io.Copy(lw, io.LimitReader(resp.Body, h.limit+1))
	if info := dag.NodeInfoFrom(ctx); info != nil {
		info.SetMetric("http_status", int64(resp.StatusCode))
		info.SetMetric("response_bytes", n)
		if ir != nil {
			info.SetMetric("request_bytes", ir.Bytes())
		}
	}
	if errors.Is(err, ErrResponseTooLarge) {
		return dag.Permanent(err)
	}
	if err != nil {
		return fmt.Errorf("node %q: read response of %s: %w", node, target, contextErr(ctx, err))
	}
	return nil
}

func (h *httpRequest) accepts(code int) bool {
	if len(h.p.ExpectStatus) == 0 {
		return code >= 200 && code < 300
	}
	for _, s := range h.p.ExpectStatus {
		if s == code {
			return true
		}
	}
	return false
}

// waitBodyClosed waits until the HTTP transport has closed a streamed
// request body, so that no Read of an input outlives the node. The request
// context is cancelled first, which makes the transport give up.
func waitBodyClosed(ir *inputsReader, cancel context.CancelFunc) {
	cancel()
	select {
	case <-ir.done:
	case <-time.After(10 * time.Second):
		// The transport always closes the body; this only bounds a bug.
	}
	ir.Close()
}

// contextErr replaces a transport error caused by a cancelled context with
// the context's cause (for example the node's timeout), keeping err.
func contextErr(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	cause := context.Cause(ctx)
	if errors.Is(err, cause) {
		return err
	}
	return fmt.Errorf("%w (%w)", cause, err)
}

// expandEnv replaces ${NAME} in s with getenv(NAME); an empty or unset
// variable is an error naming it.
func expandEnv(getenv func(string) string, s string) (string, error) {
	var missing []string
	out := envRef.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		v := getenv(name)
		if v == "" {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s is not set", strings.Join(missing, ", "))
	}
	return out, nil
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
