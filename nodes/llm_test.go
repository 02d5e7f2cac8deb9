package nodes

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dagrun/dagrun/dag"
	"go.uber.org/goleak"
)

// ---------------------------------------------------------------------------
// Helpers shared by llm_test.go, http_test.go and proc_test.go.

// testTypes are tiny test-only sources: "test.text" writes its "text" param
// as bytes, "test.rows" writes a table of n rows (id, name, amount).
func testTypes() []dag.Type {
	return []dag.Type{
		{Name: "test.text", Output: dag.KindBytes, MaxInputs: 0, New: func(spec *dag.NodeSpec) (dag.Node, error) {
			var p struct {
				Text   string `json:"text"`
				Repeat int    `json:"repeat"`
			}
			if err := dag.DecodeParams(spec.Params, &p); err != nil {
				return nil, err
			}
			text := []byte(p.Text)
			return dag.NodeFunc(func(ctx context.Context, in *dag.Inputs, out *dag.Output) error {
				for i := 0; i < max(p.Repeat, 1); i++ {
					if _, err := out.Write(text); err != nil {
						return err
					}
				}
				return nil
			}), nil
		}},
		{Name: "test.rows", Output: dag.KindTable, MaxInputs: 0, New: func(spec *dag.NodeSpec) (dag.Node, error) {
			var p struct {
				N int `json:"n"`
			}
			if err := dag.DecodeParams(spec.Params, &p); err != nil {
				return nil, err
			}
			return dag.NodeFunc(func(ctx context.Context, in *dag.Inputs, out *dag.Output) error {
				rw, err := out.Table([]string{"id", "name", "amount"})
				if err != nil {
					return err
				}
				for i := 0; i < p.N; i++ {
					if err := rw.Write(ctx, dag.Row{int64(i), fmt.Sprintf("row <%d>", i), float64(i) * 1.5}); err != nil {
						return err
					}
				}
				return nil
			}), nil
		}},
	}
}

// setup returns a registry with the built-in types configured by opts and
// the test sources.
func setup(t testing.TB, opts Options) *dag.Registry {
	t.Helper()
	if opts.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		opts.HTTPClient = &http.Client{Transport: tr}
		t.Cleanup(tr.CloseIdleConnections)
	}
	reg := NewRegistry(opts)
	for _, tt := range testTypes() {
		reg.MustRegister(tt)
	}
	return reg
}

// runWF parses, validates and runs a workflow; the result is closed at the
// end of the test.
func runWF(t testing.TB, reg *dag.Registry, cfg dag.Config, js string) (*dag.Result, error) {
	t.Helper()
	wf, err := dag.Parse([]byte(js), dag.LoadLimits{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := dag.Validate(wf, reg)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := dag.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ex.Run(context.Background(), p)
	if res != nil {
		t.Cleanup(func() { res.Close() })
	}
	return res, err
}

// output reads node id's result output whole (test outputs are small).
func output(t testing.TB, res *dag.Result, id string) []byte {
	t.Helper()
	in, ok := res.Output(id)
	if !ok {
		t.Fatalf("no result output %q", id)
	}
	rc, err := in.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nodeErr returns the failure of node id in a *dag.RunError.
func nodeErr(t testing.TB, err error, id string) *dag.NodeError {
	t.Helper()
	var re *dag.RunError
	if !errors.As(err, &re) {
		t.Fatalf("want a *dag.RunError, got %v", err)
	}
	for _, f := range re.Failed {
		if f.Node == id {
			return f
		}
	}
	t.Fatalf("node %q did not fail: %v", id, err)
	return nil
}

// noLeaks checks at the end of a (non-parallel) test that it left no
// goroutine behind.
func noLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// ---------------------------------------------------------------------------
// llm.mock

func TestLLMMockDeterministicExactSize(t *testing.T) {
	noLeaks(t)
	reg := setup(t, Options{})
	const size = 300<<10 + 7
	wf := func(seed int, text string) string {
		return fmt.Sprintf(`{"name":"mock","nodes":[
			{"id":"doc","type":"test.text","params":{"text":%s,"repeat":1000}},
			{"id":"rows","type":"test.rows","params":{"n":100}},
			{"id":"llm","type":"llm.mock","inputs":["doc","rows"],"params":{"reply_bytes":%d,"seed":%d,"chunk_bytes":"5KiB","prompt":"Summarise:"}}]}`,
			js(text), size, seed)
	}
	run := func(seed int, text string) ([]byte, *dag.NodeReport) {
		res, err := runWF(t, reg, dag.Config{}, wf(seed, text))
		if err != nil {
			t.Fatal(err)
		}
		return output(t, res, "llm"), res.Report.Node("llm")
	}
	a, rep := run(1, "quarterly numbers ")
	b, _ := run(1, "quarterly numbers ")
	c, _ := run(2, "quarterly numbers ")
	d, _ := run(1, "quarterly numbers!")
	if len(a) != size || len(c) != size || len(d) != size {
		t.Fatalf("reply sizes %d %d %d, want %d", len(a), len(c), len(d), size)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("same seed and prompt gave different replies")
	}
	if bytes.Equal(a, c) || bytes.Equal(a, d) {
		t.Fatal("a different seed or prompt gave the same reply")
	}
	// The prompt is prompt param + doc (18000 bytes) + "\n\n" + 100 JSON lines.
	var rowsBytes int64
	for i := 0; i < 100; i++ {
		rowsBytes += int64(len(js(map[string]any{"amount": float64(i) * 1.5, "id": i, "name": fmt.Sprintf("row <%d>", i)}))) + 1
	}
	if want := int64(len("Summarise:")+18000+2) + rowsBytes; rep.Metrics["prompt_bytes"] != want {
		t.Fatalf("prompt_bytes = %d, want %d", rep.Metrics["prompt_bytes"], want)
	}
	// English-like: sentences start with a capital and end with a full stop
	// or question mark, words are lower-case letters.
	if !unicode.IsUpper(rune(a[0])) {
		t.Fatalf("reply starts with %q", a[:20])
	}
	words := strings.Fields(string(a[:size-40]))
	if len(words) < size/12 {
		t.Fatalf("only %d words in %d bytes", len(words), size)
	}
	sentences := strings.Count(string(a), ". ") + strings.Count(string(a), "? ") + strings.Count(string(a), ".\n\n")
	if sentences < len(words)/25 || sentences > len(words)/5 {
		t.Fatalf("%d sentences for %d words", sentences, len(words))
	}
	for _, w := range words {
		w = strings.TrimRight(w, ".,?")
		for _, r := range w {
			if !unicode.IsLetter(r) {
				t.Fatalf("word %q in reply", w)
			}
		}
	}
}

func TestLLMMockLatencyHonoursTimeout(t *testing.T) {
	noLeaks(t)
	reg := setup(t, Options{})
	start := time.Now()
	_, err := runWF(t, reg, dag.Config{}, `{"name":"slow","nodes":[
		{"id":"llm","type":"llm.mock","timeout":"50ms","params":{"reply_bytes":"1MiB","latency":"1h"}}]}`)
	ne := nodeErr(t, err, "llm")
	if ne.Kind != dag.KindTimeout || !errors.Is(ne, dag.ErrTimeout) {
		t.Fatalf("kind %s: %v", ne.Kind, ne)
	}
	if time.Since(start) > time.Minute {
		t.Fatal("latency did not honour the node timeout")
	}
}

func TestLLMMockParamErrors(t *testing.T) {
	t.Parallel()
	reg := setup(t, Options{})
	typ, _ := reg.Lookup("llm.mock")
	_, err := typ.New(&dag.NodeSpec{ID: "x", Params: json.RawMessage(`{"reply_bytes":"2TiB","chunk_bytes":"64MiB"}`)})
	assertParamFields(t, err, "reply_bytes", "chunk_bytes")
	_, err = typ.New(&dag.NodeSpec{ID: "x", Params: json.RawMessage(`{"reply_byte":10}`)})
	assertParamFields(t, err, "reply_byte")
}

// assertParamFields checks that err holds a *dag.ParamError for each field.
func assertParamFields(t *testing.T, err error, fields ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want param errors for %v", fields)
	}
	for _, f := range fields {
		found := false
		for _, e := range flattenErr(err) {
			var pe *dag.ParamError
			if errors.As(e, &pe) && pe.Field == f {
				found = true
			}
		}
		if !found {
			t.Errorf("no ParamError for %q in: %v", f, err)
		}
	}
}

func flattenErr(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flattenErr(e)...)
		}
		return out
	}
	return []error{err}
}

// ---------------------------------------------------------------------------
// llm.chat against a local server speaking both SSE protocols.

// fakeModel is an httptest server for the OpenAI and Anthropic streaming
// APIs. It records the last request and answers with deltas, or with what
// the test's hook decides.
type fakeModel struct {
	srv      *httptest.Server
	requests atomic.Int32
	// last request
	header  http.Header
	body    []byte
	chunked bool
	// reply: the deltas to stream (nil: "Hello" "!")
	deltas []string
	// hook, when set, handles the request instead (after recording it).
	hook func(w http.ResponseWriter, r *http.Request, n int32) bool
	// noFinal leaves out [DONE] / message_stop.
	noFinal bool
	// errAfter sends an error event after this many deltas (when > 0).
	errAfter int
	errType  string
}

func newFakeModel(t *testing.T) *fakeModel {
	f := &fakeModel{}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeModel) serve(w http.ResponseWriter, r *http.Request) {
	n := f.requests.Add(1)
	f.header = r.Header.Clone()
	f.chunked = len(r.TransferEncoding) > 0 && r.TransferEncoding[0] == "chunked"
	f.body, _ = io.ReadAll(r.Body)
	if f.hook != nil && f.hook(w, r, n) {
		return
	}
	deltas := f.deltas
	if deltas == nil {
		deltas = []string{"Hello", "!"}
	}
	w.Header().Set("Content-Type", "text/event-stream")
	fl := w.(http.Flusher)
	anthropic := r.URL.Path == "/v1/messages"
	if anthropic {
		fmt.Fprint(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":42}}}\n\n")
		fmt.Fprint(w, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
		fmt.Fprint(w, ": keep-alive comment\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n")
	}
	for i, d := range deltas {
		if f.errAfter > 0 && i == f.errAfter {
			if anthropic {
				fmt.Fprintf(w, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":%q,\"message\":\"Overloaded\"}}\n\n", f.errType)
			} else {
				fmt.Fprintf(w, "data: {\"error\":{\"type\":%q,\"message\":\"server had an error\"}}\n\n", f.errType)
			}
			return
		}
		q, _ := json.Marshal(d)
		if anthropic {
			fmt.Fprintf(w, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":%s}}\n\n", q)
		} else {
			fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%s},\"finish_reason\":null}]}\n\n", q)
		}
		if i%16 == 0 {
			fl.Flush()
		}
	}
	if f.noFinal {
		return
	}
	if anthropic {
		fmt.Fprint(w, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
		fmt.Fprint(w, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":7}}\n\n")
		fmt.Fprint(w, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	} else {
		fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":42,\"completion_tokens\":7}}\n\n")
		fmt.Fprint(w, "data: [DONE]\n\n")
	}
}

// chatRequest is the part of both request formats the tests check.
type chatRequest struct {
	Model       string   `json:"model"`
	Stream      bool     `json:"stream"`
	MaxTokens   int      `json:"max_tokens"`
	Temperature *float64 `json:"temperature"`
	System      string   `json:"system"`
	Messages    []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"messages"`
}

// manyDeltas returns about total bytes of text in deltas of 1..2000 bytes,
// with multi-byte runes and JSON-special characters.
func manyDeltas(total int) ([]string, string) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("abc def \"quoted\" \\ back\nslash é ü 中文 😀\t<>&")
	var ds []string
	var all strings.Builder
	for all.Len() < total {
		n := 1 + r.IntN(2000)
		var b strings.Builder
		for b.Len() < n {
			b.WriteRune(alphabet[r.IntN(len(alphabet))])
		}
		ds = append(ds, b.String())
		all.WriteString(b.String())
	}
	return ds, all.String()
}

func TestLLMChatStreamsBothProtocols(t *testing.T) {
	noLeaks(t)
	deltas, want := manyDeltas(5 << 20)
	// The input holds JSON-special characters, multi-byte runes and an
	// invalid byte; it arrives as the user message after the prompt.
	doc := "Line 1 \"quoted\" \\ tab\t é 中文 😀 \x01 end\n"
	for _, provider := range []string{"openai", "anthropic"} {
		t.Run(provider, func(t *testing.T) {
			f := newFakeModel(t)
			f.deltas = deltas
			reg := setup(t, Options{Getenv: env(map[string]string{"MY_KEY": "sk-test"})})
			res, err := runWF(t, reg, dag.Config{}, fmt.Sprintf(`{"name":"chat","nodes":[
				{"id":"doc","type":"test.text","params":{"text":%s,"repeat":20000}},
				{"id":"llm","type":"llm.chat","inputs":["doc"],"params":{"provider":%q,"base_url":%q,"model":"m-1",
				 "api_key_env":"MY_KEY","system":"Be brief.","prompt":"Summarise this:","temperature":0.2,"max_tokens":99}}]}`,
				js(doc), provider, f.srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			got := output(t, res, "llm")
			if len(got) != len(want) || string(got) != want {
				t.Fatalf("output %d bytes, want the %d bytes of %d concatenated deltas", len(got), len(want), len(deltas))
			}
			if !f.chunked {
				t.Fatal("request body was not streamed (no chunked transfer encoding)")
			}
			var req chatRequest
			if err := json.Unmarshal(f.body, &req); err != nil {
				t.Fatalf("request body is not JSON: %v", err)
			}
			if req.Model != "m-1" || !req.Stream || req.MaxTokens != 99 || req.Temperature == nil || *req.Temperature != 0.2 {
				t.Fatalf("request %+v", req)
			}
			user := req.Messages[len(req.Messages)-1]
			wantUser := "Summarise this:\n\n" + strings.Repeat(strings.ToValidUTF8(doc, "\uFFFD"), 20000)
			if user.Role != "user" || user.Content != wantUser {
				t.Fatalf("user message: %d bytes, want %d (starts %q)", len(user.Content), len(wantUser), user.Content[:min(60, len(user.Content))])
			}
			switch provider {
			case "openai":
				if f.header.Get("Authorization") != "Bearer sk-test" {
					t.Fatalf("Authorization %q", f.header.Get("Authorization"))
				}
				if req.Messages[0].Role != "system" || req.Messages[0].Content != "Be brief." {
					t.Fatalf("system message %+v", req.Messages[0])
				}
			case "anthropic":
				if f.header.Get("x-api-key") != "sk-test" || f.header.Get("anthropic-version") != "2023-06-01" {
					t.Fatalf("headers %v", f.header)
				}
				if req.System != "Be brief." || len(req.Messages) != 1 {
					t.Fatalf("system %q, %d messages", req.System, len(req.Messages))
				}
			}
			m := res.Report.Node("llm").Metrics
			if m["reply_bytes"] != int64(len(want)) || m["input_tokens"] != 42 || m["output_tokens"] != 7 {
				t.Fatalf("metrics %v", m)
			}
			if m["prompt_bytes"] != int64(len("Summarise this:")+20000*len(doc)) {
				t.Fatalf("prompt_bytes %d", m["prompt_bytes"])
			}
		})
	}
}

// The user message is the inputs alone when no prompt is set; a table
// input goes as JSON lines.
func TestLLMChatInputsAreTheMessage(t *testing.T) {
	noLeaks(t)
	f := newFakeModel(t)
	reg := setup(t, Options{Getenv: env(map[string]string{"OPENAI_API_KEY": "k"})})
	res, err := runWF(t, reg, dag.Config{}, fmt.Sprintf(`{"name":"chat","nodes":[
		{"id":"a","type":"test.text","params":{"text":"first"}},
		{"id":"rows","type":"test.rows","params":{"n":2}},
		{"id":"llm","type":"llm.chat","inputs":["a","rows"],"params":{"base_url":%q,"model":"m"}}]}`, f.srv.URL+"/v1"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(output(t, res, "llm")); got != "Hello!" {
		t.Fatalf("output %q", got)
	}
	var req chatRequest
	if err := json.Unmarshal(f.body, &req); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	want.WriteString("first\n\n")
	enc := json.NewEncoder(&want) // tables go as JSON lines, as Input.Open renders them
	enc.Encode(map[string]any{"amount": 0.0, "id": 0, "name": "row <0>"})
	enc.Encode(map[string]any{"amount": 1.5, "id": 1, "name": "row <1>"})
	if len(req.Messages) != 1 || req.Messages[0].Content != want.String() {
		t.Fatalf("messages %+v, want content %q", req.Messages, want.String())
	}
	if req.MaxTokens != 1024 || req.Temperature != nil {
		t.Fatalf("defaults: max_tokens %d temperature %v", req.MaxTokens, req.Temperature)
	}
}

func TestLLMChatFailures(t *testing.T) {
	noLeaks(t)
	big := strings.Repeat("x", 100<<10)
	cases := []struct {
		name      string
		provider  string
		keys      map[string]string
		params    string
		setup     func(f *fakeModel)
		attempts  int // attempts made, with a retry policy of 3
		requests  int32
		permanent bool
		is        error
		contains  []string
	}{
		{name: "missing key", provider: "anthropic", keys: map[string]string{}, attempts: 1, requests: 0, permanent: true, is: ErrNoAPIKey,
			contains: []string{"ANTHROPIC_API_KEY", "api_key_env"}},
		{name: "401", provider: "openai", setup: func(f *fakeModel) {
			f.hook = func(w http.ResponseWriter, r *http.Request, n int32) bool {
				http.Error(w, `{"error":{"message":"Incorrect API key provided"}}`+big, http.StatusUnauthorized)
				return true
			}
		}, attempts: 1, requests: 1, permanent: true, contains: []string{"HTTP 401", "Incorrect API key provided", "..."}},
		{name: "429 then ok", provider: "openai", setup: func(f *fakeModel) {
			f.hook = func(w http.ResponseWriter, r *http.Request, n int32) bool {
				if n == 1 {
					w.Header().Set("Retry-After", "0")
					http.Error(w, `{"error":{"message":"Rate limit reached"}}`, http.StatusTooManyRequests)
					return true
				}
				return false
			}
		}, attempts: 2, requests: 2},
		{name: "503 every time", provider: "anthropic", setup: func(f *fakeModel) {
			f.hook = func(w http.ResponseWriter, r *http.Request, n int32) bool {
				http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
				return true
			}
		}, attempts: 3, requests: 3, contains: []string{"HTTP 503", "upstream unavailable"}},
		{name: "anthropic error event mid-stream", provider: "anthropic", setup: func(f *fakeModel) {
			f.deltas, _ = manyDeltas(64 << 10)
			f.errAfter, f.errType = 10, "overloaded_error"
		}, attempts: 3, requests: 3, contains: []string{"overloaded_error", "Overloaded"}},
		{name: "anthropic invalid request event", provider: "anthropic", setup: func(f *fakeModel) {
			f.errAfter, f.errType = 1, "invalid_request_error"
		}, attempts: 1, requests: 1, permanent: true, contains: []string{"invalid_request_error"}},
		{name: "openai error event mid-stream", provider: "openai", setup: func(f *fakeModel) {
			f.errAfter, f.errType = 1, "server_error"
		}, attempts: 3, requests: 3, contains: []string{"server_error", "server had an error"}},
		{name: "stream cut before DONE", provider: "openai", setup: func(f *fakeModel) { f.noFinal = true },
			attempts: 3, requests: 3, is: ErrStreamIncomplete},
		{name: "reply over max_reply_bytes", provider: "anthropic", params: `,"max_reply_bytes":"100KiB"`, setup: func(f *fakeModel) {
			f.deltas, _ = manyDeltas(1 << 20)
		}, attempts: 1, requests: 1, permanent: true, is: ErrResponseTooLarge, contains: []string{"max_reply_bytes", "100.0 KiB"}},
		{name: "not an event stream", provider: "openai", setup: func(f *fakeModel) {
			f.hook = func(w http.ResponseWriter, r *http.Request, n int32) bool {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"choices":[]}`)
				return true
			}
		}, attempts: 1, requests: 1, permanent: true, contains: []string{"text/event-stream", "application/json"}},
		{name: "timeout", provider: "openai", params: `,"timeout":"100ms"`, setup: func(f *fakeModel) {
			f.hook = func(w http.ResponseWriter, r *http.Request, n int32) bool {
				w.Header().Set("Content-Type", "text/event-stream")
				w.(http.Flusher).Flush()
				<-r.Context().Done()
				return true
			}
		}, attempts: 3, requests: 3, is: context.DeadlineExceeded, contains: []string{"timeout 100ms"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeModel(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			keys := tc.keys
			if keys == nil {
				keys = map[string]string{"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k"}
			}
			reg := setup(t, Options{Getenv: env(keys)})
			res, err := runWF(t, reg, dag.Config{}, fmt.Sprintf(`{"name":"chat","nodes":[
				{"id":"llm","type":"llm.chat","retry":{"attempts":3,"backoff":"1ms"},
				 "params":{"provider":%q,"base_url":%q,"model":"m"%s}}]}`, tc.provider, f.srv.URL, tc.params))
			if got := f.requests.Load(); got != tc.requests {
				t.Errorf("%d requests, want %d", got, tc.requests)
			}
			if got := res.Report.Node("llm").Attempts; got != tc.attempts {
				t.Errorf("%d attempts, want %d", got, tc.attempts)
			}
			if tc.name == "429 then ok" {
				if err != nil || string(output(t, res, "llm")) != "Hello!" {
					t.Fatalf("err %v", err)
				}
				return
			}
			ne := nodeErr(t, err, "llm")
			if errors.Is(ne, dag.ErrPermanent) != tc.permanent {
				t.Errorf("permanent = %v, want %v: %v", !tc.permanent, tc.permanent, ne)
			}
			if tc.is != nil && !errors.Is(ne, tc.is) {
				t.Errorf("error does not match %v: %v", tc.is, ne)
			}
			msg := ne.Error()
			for _, s := range tc.contains {
				if !strings.Contains(msg, s) {
					t.Errorf("error lacks %q: %s", s, msg)
				}
			}
			if len(msg) > 4<<10 {
				t.Errorf("error message of %d bytes: the body excerpt is not bounded", len(msg))
			}
			var he *HTTPError
			if errors.As(ne, &he) && (len(he.Body) > BodyExcerptBytes || he.Node != "llm") {
				t.Errorf("HTTPError body %d bytes, node %q", len(he.Body), he.Node)
			}
		})
	}
}

func TestLLMChatParamErrors(t *testing.T) {
	t.Parallel()
	reg := setup(t, Options{})
	typ, _ := reg.Lookup("llm.chat")
	_, err := typ.New(&dag.NodeSpec{ID: "x", Params: json.RawMessage(`{"provider":"gemini","temperature":3,"max_reply_bytes":0,"api_key_env":"A-B"}`)})
	assertParamFields(t, err, "provider", "model", "temperature", "max_reply_bytes", "api_key_env")
	_, err = typ.New(&dag.NodeSpec{ID: "x", Params: json.RawMessage(`{"model":"m","base_url":"ftp://x"}`)})
	assertParamFields(t, err, "base_url")
}

// The escaper agrees with encoding/json on arbitrary bytes, whatever the
// read sizes (runes split between reads).
func TestJSONStringReaderMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	samples := []string{"", "plain", "é中😀", "\xff\xfe", "a\xe4\xb8", "\"\\\n\r\t\x00\x1f\x7f", "\u2028\u2029"}
	for i := 0; i < 200; i++ {
		b := make([]byte, r.IntN(300))
		for j := range b {
			b[j] = byte(r.IntN(256))
		}
		if i%2 == 0 {
			b = append(b, "héllo 中文 😀"...)
		}
		samples = append(samples, string(b))
	}
	for _, s := range samples {
		for _, rd := range []io.Reader{strings.NewReader(s), iotest.OneByteReader(strings.NewReader(s)), iotest.HalfReader(strings.NewReader(s))} {
			got, err := io.ReadAll(&jsonStringReader{r: rd})
			if err != nil {
				t.Fatal(err)
			}
			var dec string
			if err := json.Unmarshal([]byte(`"`+string(got)+`"`), &dec); err != nil {
				t.Fatalf("%q escaped to invalid JSON %q: %v", s, got, err)
			}
			want, _ := json.Marshal(s)
			var wantDec string
			json.Unmarshal(want, &wantDec)
			if dec != wantDec || !utf8.ValidString(dec) {
				t.Fatalf("%q: decoded %q, encoding/json gives %q", s, dec, wantDec)
			}
		}
	}
}

func TestSSEReaderBoundsEvents(t *testing.T) {
	t.Parallel()
	in := "event: a\ndata: 1\ndata: 2\r\n\r\n: comment\n\ndata:x\n\ndata: " + strings.Repeat("y", 300) + "\n\n"
	s := &sseReader{br: bufioReader(in, 16), max: 100}
	ev, data, err := s.next()
	if err != nil || ev != "a" || string(data) != "1\n2" {
		t.Fatalf("%q %q %v", ev, data, err)
	}
	ev, data, err = s.next()
	if err != nil || ev != "" || string(data) != "x" {
		t.Fatalf("%q %q %v", ev, data, err)
	}
	if _, _, err = s.next(); err == nil || !strings.Contains(err.Error(), "over 100 bytes") {
		t.Fatalf("oversized event: %v", err)
	}
}

func bufioReader(s string, size int) *bufio.Reader {
	return bufio.NewReaderSize(strings.NewReader(s), size)
}

func BenchmarkLLMMock(b *testing.B) {
	for _, size := range []int64{1 << 20, 64 << 20} {
		b.Run(dag.FormatBytes(size), func(b *testing.B) {
			reg := setup(b, Options{})
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				// table.head-free sink: an exec of "wc -c" would add a process;
				// the result output is freed by Close.
				res, err := runWF(b, reg, dag.Config{}, fmt.Sprintf(`{"name":"b","nodes":[
					{"id":"llm","type":"llm.mock","params":{"reply_bytes":%d}}]}`, size))
				if err != nil {
					b.Fatal(err)
				}
				res.Close()
			}
		})
	}
}

// BenchmarkTextGen measures the generator alone: 32 KiB pieces, no
// allocation per piece.
func BenchmarkTextGen(b *testing.B) {
	g := newTextGen(1, 2)
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		g.fill(buf)
	}
}

// BenchmarkLLMChat streams a 16 MiB reply in 4 KiB deltas from a local
// server, and sends a 64 MiB input as the request body. B/op next to the
// sizes shows neither is held twice (the output itself is kept in memory by
// the executor: that is the reply's 16 MiB).
func BenchmarkLLMChat(b *testing.B) {
	delta := strings.Repeat("token ", 4096/6)
	cases := []struct {
		name        string
		replyDeltas int
		inputRepeat int
		inputChunk  string
		bytesPerOp  int64
	}{
		{name: "reply16MiB", replyDeltas: (16 << 20) / len(delta), inputRepeat: 1, inputChunk: "hi", bytesPerOp: int64(len(delta) * ((16 << 20) / len(delta)))},
		{name: "request64MiB", replyDeltas: 1, inputRepeat: 16384, inputChunk: strings.Repeat("abcd", 1024), bytesPerOp: 64 << 20},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "text/event-stream")
				q, _ := json.Marshal(delta)
				ev := []byte(fmt.Sprintf("data: {\"choices\":[{\"delta\":{\"content\":%s}}]}\n\n", q))
				for i := 0; i < tc.replyDeltas; i++ {
					w.Write(ev)
				}
				io.WriteString(w, "data: [DONE]\n\n")
			}))
			defer srv.Close()
			reg := setup(b, Options{Getenv: env(map[string]string{"OPENAI_API_KEY": "k"})})
			wf := fmt.Sprintf(`{"name":"b","nodes":[
				{"id":"doc","type":"test.text","params":{"text":%q,"repeat":%d}},
				{"id":"llm","type":"llm.chat","inputs":["doc"],"params":{"base_url":%q,"model":"m","max_reply_bytes":"64MiB"}}]}`,
				tc.inputChunk, tc.inputRepeat, srv.URL)
			b.SetBytes(tc.bytesPerOp)
			b.ReportAllocs()
			for b.Loop() {
				res, err := runWF(b, reg, dag.Config{}, wf)
				if err != nil {
					b.Fatal(err)
				}
				res.Close()
			}
		})
	}
}

// A load-test workflow: llm.mock reads its input as the prompt and streams
// a deterministic reply of exactly reply_bytes.
func Example_llmMock() {
	reg := NewRegistry(Options{})
	wf, err := dag.Parse([]byte(`{"name":"load-test","nodes":[
		{"id":"llm","type":"llm.mock","params":{"reply_bytes":120,"seed":7,"prompt":"Summarise the quarter."}}]}`), dag.LoadLimits{})
	if err != nil {
		fmt.Println(err)
		return
	}
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
	out, _ := res.Output("llm")
	rc, _ := out.Open(context.Background())
	defer rc.Close()
	reply, _ := io.ReadAll(rc)
	fmt.Printf("%d bytes: %s\n", len(reply), reply)
	fmt.Println("prompt_bytes:", res.Report.Node("llm").Metrics["prompt_bytes"])
	// Output:
	// 120 bytes: Is day all also issue further still. Since fell, weak, question year stable below indicates then the will were, record d
	// prompt_bytes: 22
}
