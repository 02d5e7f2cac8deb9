package nodes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dagrun/dagrun/dag"
)

// countingTransport counts the response body bytes the client reads.
type countingTransport struct {
	rt   http.RoundTripper
	read atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(r)
	if err == nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.read}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func countingClient(t *testing.T) (*http.Client, *countingTransport) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	ct := &countingTransport{rt: tr}
	return &http.Client{Transport: ct}, ct
}

// A JSON response is copied byte for byte; query params are added to the
// URL's own, ${ENV} in headers is resolved through Options.Getenv.
func TestHTTPRequestCopiesResponse(t *testing.T) {
	noLeaks(t)
	body := `{"items":[1,2,3],"text":"é \"q\"","n":null}` + "\n"
	var gotQuery, gotAuth, gotAccept, gotMethod string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotQuery, gotAuth, gotAccept, gotMethod = r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("Accept"), r.Method
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	defer srv.Close()
	reg := setup(t, Options{Getenv: env(map[string]string{"TOOL_TOKEN": "s3cret"})})
	res, err := runWF(t, reg, dag.Config{}, fmt.Sprintf(`{"name":"h","nodes":[
		{"id":"get","type":"http.request","params":{"url":%q,"query":{"q":"a b","limit":"10"},
		 "headers":{"Authorization":"Bearer ${TOOL_TOKEN}","Accept":"application/json"}}}]}`, srv.URL+"/search?lang=en"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(output(t, res, "get")); got != body {
		t.Fatalf("output %q, want %q", got, body)
	}
	if gotMethod != "GET" || gotQuery != "lang=en&limit=10&q=a+b" || gotAuth != "Bearer s3cret" || gotAccept != "application/json" {
		t.Fatalf("request: %s query %q auth %q accept %q", gotMethod, gotQuery, gotAuth, gotAccept)
	}
	m := res.Report.Node("get").Metrics
	if m["http_status"] != 200 || m["response_bytes"] != int64(len(body)) {
		t.Fatalf("metrics %v", m)
	}
}

// body_from_inputs streams the inputs (a table as JSON lines) as a chunked
// request body; body sends a fixed string.
func TestHTTPRequestBodies(t *testing.T) {
	noLeaks(t)
	var got []byte
	var chunked bool
	var ctype string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		chunked = len(r.TransferEncoding) > 0
		ctype = r.Header.Get("Content-Type")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "%d", len(got))
	}))
	defer srv.Close()
	reg := setup(t, Options{})
	res, err := runWF(t, reg, dag.Config{}, fmt.Sprintf(`{"name":"h","nodes":[
		{"id":"rows","type":"test.rows","params":{"n":3000}},
		{"id":"post","type":"http.request","inputs":["rows"],"params":{"method":"post","url":%q,"body_from_inputs":true,
		 "headers":{"Content-Type":"application/x-ndjson"}}}]}`, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
	if len(lines) != 3000 || !chunked || ctype != "application/x-ndjson" {
		t.Fatalf("%d lines, chunked %v, content type %q", len(lines), chunked, ctype)
	}
	var row map[string]any
	if err := json.Unmarshal([]byte(lines[2999]), &row); err != nil || row["name"] != "row <2999>" || row["id"] != 2999.0 {
		t.Fatalf("last line %q: %v", lines[2999], err)
	}
	if string(output(t, res, "post")) != fmt.Sprint(len(got)) {
		t.Fatalf("output %q", output(t, res, "post"))
	}
	if m := res.Report.Node("post").Metrics; m["request_bytes"] != int64(len(got)) || m["http_status"] != 201 {
		t.Fatalf("metrics %v", m)
	}

	res, err = runWF(t, reg, dag.Config{}, fmt.Sprintf(`{"name":"h","nodes":[
		{"id":"put","type":"http.request","params":{"method":"PUT","url":%q,"body":"{\"a\":1}"}}]}`, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != `{"a":1}` || string(output(t, res, "put")) != "7" {
		t.Fatalf("server got %q", got)
	}
}

// Over max_response_bytes the node fails naming the node, URL and limit,
// after reading at most limit+1 bytes; a declared Content-Length over the
// limit fails before reading anything.
func TestHTTPRequestSizeLimit(t *testing.T) {
	noLeaks(t)
	const limit = 1 << 20
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := strings.Repeat("z", 32<<10)
		if r.URL.Path == "/declared" {
			w.Header().Set("Content-Length", fmt.Sprint(8<<20))
		}
		for i := 0; i < 256; i++ { // 8 MiB
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	for _, path := range []string{"/streamed", "/declared"} {
		t.Run(path, func(t *testing.T) {
			client, ct := countingClient(t)
			reg := setup(t, Options{HTTPClient: client})
			_, err := runWF(t, reg, dag.Config{}, fmt.Sprintf(`{"name":"h","nodes":[
				{"id":"big","type":"http.request","retry":{"attempts":3},"params":{"url":%q,"max_response_bytes":"1MiB"}}]}`, srv.URL+path))
			ne := nodeErr(t, err, "big")
			if !errors.Is(ne, ErrResponseTooLarge) || !errors.Is(ne, dag.ErrPermanent) || ne.Attempt != 1 {
				t.Fatalf("want a permanent ErrResponseTooLarge on attempt 1: %v", ne)
			}
			for _, s := range []string{`"big"`, srv.URL + path, "1.0 MiB", "max_response_bytes"} {
				if !strings.Contains(ne.Error(), s) {
					t.Errorf("error lacks %q: %v", s, ne)
				}
			}
			read := ct.read.Load()
			if read > limit+1 {
				t.Fatalf("read %d bytes, limit %d", read, limit)
			}
			if path == "/declared" && read != 0 {
				t.Fatalf("read %d bytes of a response declared over the limit", read)
			}
		})
	}
}

func TestHTTPRequestStatusErrors(t *testing.T) {
	noLeaks(t)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		switch r.URL.Path {
		case "/500":
			http.Error(w, "database exploded: "+strings.Repeat("stack frame ", 10000), http.StatusInternalServerError)
		case "/404":
			http.Error(w, "no such tool", http.StatusNotFound)
		case "/429":
			w.Header().Set("Retry-After", "7")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	cases := []struct {
		path      string
		expect    string
		status    int
		calls     int32
		permanent bool
		contains  []string
	}{
		{path: "/500", status: 500, calls: 2, contains: []string{"HTTP 500", "database exploded", "..."}},
		{path: "/404", status: 404, calls: 1, permanent: true, contains: []string{"HTTP 404", "no such tool", `"call"`}},
		{path: "/429", status: 429, calls: 2, contains: []string{"HTTP 429", "Retry-After 7", "slow down"}},
		{path: "/404", expect: `,"expect_status":[200,404]`, calls: 1},
	}
	for _, tc := range cases {
		t.Run(tc.path+tc.expect, func(t *testing.T) {
			calls.Store(0)
			reg := setup(t, Options{})
			res, err := runWF(t, reg, dag.Config{}, fmt.Sprintf(`{"name":"h","nodes":[
				{"id":"call","type":"http.request","retry":{"attempts":2,"backoff":"1ms"},"params":{"url":%q%s}}]}`, srv.URL+tc.path, tc.expect))
			if calls.Load() != tc.calls {
				t.Errorf("%d calls, want %d", calls.Load(), tc.calls)
			}
			if tc.status == 0 {
				if err != nil || !strings.Contains(string(output(t, res, "call")), "no such tool") {
					t.Fatalf("expected status not accepted: %v", err)
				}
				return
			}
			ne := nodeErr(t, err, "call")
			var he *HTTPError
			if !errors.As(ne, &he) || he.Status != tc.status || len(he.Body) > BodyExcerptBytes {
				t.Fatalf("want an HTTPError with status %d and a bounded body: %v", tc.status, ne)
			}
			if errors.Is(ne, dag.ErrPermanent) != tc.permanent {
				t.Errorf("permanent = %v, want %v", !tc.permanent, tc.permanent)
			}
			for _, s := range tc.contains {
				if !strings.Contains(ne.Error(), s) {
					t.Errorf("error lacks %q: %v", s, ne)
				}
			}
			if len(ne.Error()) > 2<<10 {
				t.Errorf("error of %d bytes", len(ne.Error()))
			}
		})
	}
}

func TestHTTPRequestTimeout(t *testing.T) {
	noLeaks(t)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	reg := setup(t, Options{})
	_, err := runWF(t, reg, dag.Config{}, fmt.Sprintf(`{"name":"h","nodes":[
		{"id":"slow","type":"http.request","params":{"url":%q,"timeout":"150ms"}}]}`, srv.URL))
	ne := nodeErr(t, err, "slow")
	if !strings.Contains(ne.Error(), "timeout 150ms") || errors.Is(ne, dag.ErrPermanent) {
		t.Fatalf("want a retryable timeout error naming 150ms: %v", ne)
	}
}

// A header naming an unset variable fails the run before any request.
func TestHTTPRequestMissingEnv(t *testing.T) {
	noLeaks(t)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer srv.Close()
	reg := setup(t, Options{Getenv: env(nil)})
	_, err := runWF(t, reg, dag.Config{}, fmt.Sprintf(`{"name":"h","nodes":[
		{"id":"h","type":"http.request","params":{"url":%q,"headers":{"X-Key":"${TOOL_KEY}"}}}]}`, srv.URL))
	ne := nodeErr(t, err, "h")
	if !strings.Contains(ne.Error(), "TOOL_KEY") || !strings.Contains(ne.Error(), "X-Key") || !errors.Is(ne, dag.ErrPermanent) || calls.Load() != 0 {
		t.Fatalf("calls %d: %v", calls.Load(), ne)
	}
}

func TestHTTPRequestParamErrors(t *testing.T) {
	t.Parallel()
	reg := setup(t, Options{})
	typ, _ := reg.Lookup("http.request")
	cases := []struct {
		params string
		fields []string
	}{
		{`{}`, []string{"url"}},
		{`{"url":"/relative","method":"GE T"}`, []string{"url", "method"}},
		{`{"url":"http://x","body":"a","body_from_inputs":true,"expect_status":[200,99],"headers":{"Bad Name":"v","X":"${1X}"}}`,
			[]string{"body", "expect_status[1]", "headers.Bad Name", "headers.X"}},
		{`{"url":"http://x","timeout":"soon"}`, []string{"(params)"}},
	}
	for _, tc := range cases {
		_, err := typ.New(&dag.NodeSpec{ID: "x", Params: json.RawMessage(tc.params)})
		assertParamFields(t, err, tc.fields...)
	}
}

// A tool call: http.request sends the query and a header whose value comes
// from the environment, and streams the JSON response into its output.
func Example_httpRequest() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"q":%q,"auth":%q}`, r.URL.Query().Get("q"), r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	reg := NewRegistry(Options{Getenv: func(k string) string { return map[string]string{"TOOL_TOKEN": "t0k"}[k] }})
	wf, _ := dag.Parse([]byte(fmt.Sprintf(`{"name":"tool","nodes":[
		{"id":"search","type":"http.request","params":{"url":%q,"query":{"q":"revenue"},
		 "headers":{"Authorization":"Bearer ${TOOL_TOKEN}"},"max_response_bytes":"1MiB"}}]}`, srv.URL)), dag.LoadLimits{})
	plan, err := dag.Validate(wf, reg)
	if err != nil {
		fmt.Println(err)
		return
	}
	ex, _ := dag.New(dag.Config{})
	res, err := ex.Run(context.Background(), plan)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer res.Close()
	out, _ := res.Output("search")
	rc, _ := out.Open(context.Background())
	defer rc.Close()
	body, _ := io.ReadAll(rc)
	fmt.Println(string(body))
	// Output:
	// {"q":"revenue","auth":"Bearer t0k"}
}
