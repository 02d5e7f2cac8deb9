package nodes

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dagrun/dagrun/dag"
)

// ---------------------------------------------------------------------------
// llm.mock

type llmMockParams struct {
	ReplyBytes *dag.ByteSize `json:"reply_bytes"`
	Latency    dag.Duration  `json:"latency"`
	Prompt     string        `json:"prompt"`
	Seed       int64         `json:"seed"`
	ChunkBytes dag.ByteSize  `json:"chunk_bytes"`
	ChunkDelay dag.Duration  `json:"chunk_delay"`
}

const (
	defaultMockReply = 1 << 10
	defaultMockChunk = 32 << 10
	maxMockReply     = 1 << 40
	maxMockChunk     = 16 << 20
)

func llmMockType(opts *Options) dag.Type {
	_ = opts
	return dag.Type{
		Name: "llm.mock",
		Doc: "A deterministic fake model for load tests: reads every input as the prompt (streamed and hashed, never held) " +
			"and streams a reply of exactly reply_bytes of English-like text determined by seed and the prompt.",
		Output:       dag.KindBytes,
		StreamsInput: true,
		MinInputs:    0,
		MaxInputs:    -1,
		Params: []dag.Param{
			{Name: "reply_bytes", Type: "bytesize", Default: "1KiB", Doc: "Exact size of the reply (up to 1 TiB); it is generated in chunks, never whole."},
			{Name: "latency", Type: "duration", Default: "0s", Doc: "Wait before the first byte of the reply (time to first token)."},
			{Name: "prompt", Type: "string", Doc: "Text placed before the inputs in the prompt (it changes the reply like the inputs do)."},
			{Name: "seed", Type: "integer", Default: "0", Doc: "Seed mixed with the prompt's hash: same seed and prompt, same reply."},
			{Name: "chunk_bytes", Type: "bytesize", Default: "32KiB", Doc: "Size of each written piece of the reply (at most 16 MiB)."},
			{Name: "chunk_delay", Type: "duration", Default: "0s", Doc: "Wait between pieces, to simulate a streamed reply."},
		},
		New: func(spec *dag.NodeSpec) (dag.Node, error) {
			var p llmMockParams
			if err := dag.DecodeParams(spec.Params, &p); err != nil {
				return nil, err
			}
			m := &llmMock{reply: defaultMockReply, chunk: defaultMockChunk, latency: time.Duration(p.Latency),
				delay: time.Duration(p.ChunkDelay), prompt: p.Prompt, seed: p.Seed}
			var errs []error
			if p.ReplyBytes != nil {
				m.reply = int64(*p.ReplyBytes)
				if m.reply < 0 || m.reply > maxMockReply {
					errs = append(errs, &dag.ParamError{Field: "reply_bytes", Message: fmt.Sprintf("%d is outside 0..1TiB", m.reply)})
				}
			}
			if p.ChunkBytes != 0 {
				m.chunk = int64(p.ChunkBytes)
				if m.chunk < 1 || m.chunk > maxMockChunk {
					errs = append(errs, &dag.ParamError{Field: "chunk_bytes", Message: fmt.Sprintf("%d is outside 1..16MiB", m.chunk)})
				}
			}
			if err := errors.Join(errs...); err != nil {
				return nil, err
			}
			return m, nil
		},
	}
}

type llmMock struct {
	reply, chunk   int64
	latency, delay time.Duration
	prompt         string
	seed           int64
}

func (m *llmMock) Run(ctx context.Context, in *dag.Inputs, out *dag.Output) error {
	h := fnv.New64a()
	h.Write([]byte(m.prompt))
	ir := newInputsReader(ctx, in, "\n\n")
	defer ir.Close()
	buf := make([]byte, 32<<10)
	n, err := io.CopyBuffer(h, ir, buf)
	if err != nil {
		return fmt.Errorf("llm.mock %q: read prompt: %w", out.NodeID(), err)
	}
	ir.Close()
	if info := dag.NodeInfoFrom(ctx); info != nil {
		info.SetMetric("prompt_bytes", n+int64(len(m.prompt)))
		info.SetMetric("reply_bytes", m.reply)
	}
	if err := sleepCtx(ctx, m.latency); err != nil {
		return err
	}
	w, err := out.Writer()
	if err != nil {
		return err
	}
	gen := newTextGen(uint64(m.seed), h.Sum64())
	if int64(cap(buf)) < m.chunk {
		buf = make([]byte, m.chunk)
	}
	for left := m.reply; left > 0; {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		p := buf[:min(left, m.chunk)]
		gen.fill(p)
		if _, err := w.Write(p); err != nil {
			return fmt.Errorf("llm.mock %q: write reply: %w", out.NodeID(), err)
		}
		left -= int64(len(p))
		if left > 0 {
			if err := sleepCtx(ctx, m.delay); err != nil {
				return err
			}
		}
	}
	return nil
}

// sleepCtx waits d or until ctx is done (returning its cause).
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// mockWords is the vocabulary of llm.mock: plain words a model writes about
// data, so the reply compresses and tokenises like real text.
var mockWords = strings.Fields(`the a an of to and in for on with by from as at that this these those it its is are was were be
been has have had will would can could should may might must not no all any each every more most less other such
data report table row column value total sum average growth quarter region market revenue cost margin customer
product service team project plan result analysis summary trend figure increase decrease rate share forecast budget
workflow process step node output input document section page chart record file source model answer question
risk issue change impact level period year month week day time first second next last new previous current recent
higher lower strong weak stable clear significant overall main key general specific likely expected important
shows suggests indicates remains reached grew fell rose declined improved reflects compared includes requires
however therefore overall meanwhile also still further instead rather while although because since when where
we you they our their your which what who how why there here than then only just about above below between across`)

// textGen produces deterministic English-like text: capitalised sentences
// of 6 to 22 words with occasional commas, in paragraphs of 3 to 7
// sentences.
type textGen struct {
	r         *rand.Rand
	carry     []byte // the end of a word that did not fit the last fill
	word      []byte // scratch
	sentLeft  int
	paraLeft  int
	startSent bool
}

func newTextGen(seed, promptHash uint64) *textGen {
	return &textGen{r: rand.New(rand.NewPCG(seed, promptHash)), startSent: true}
}

// fill fills p with the next len(p) bytes of text.
func (g *textGen) fill(p []byte) {
	n := copy(p, g.carry)
	if n < len(g.carry) {
		g.carry = g.carry[:copy(g.carry, g.carry[n:])]
		return
	}
	g.carry = g.carry[:0]
	// Generate straight into p; the word that does not fit is carried over.
	for n < len(p) {
		word := g.appendWord(g.word[:0])
		g.word = word
		c := copy(p[n:], word)
		n += c
		if c < len(word) {
			g.carry = append(g.carry[:0], word[c:]...)
		}
	}
}

// appendWord appends the next word with its punctuation and trailing space.
func (g *textGen) appendWord(b []byte) []byte {
	if g.paraLeft == 0 {
		g.paraLeft = 3 + g.r.IntN(5)
	}
	if g.sentLeft == 0 {
		g.sentLeft = 6 + g.r.IntN(17)
	}
	w := mockWords[g.r.IntN(len(mockWords))]
	start := len(b)
	b = append(b, w...)
	if g.startSent {
		b[start] = b[start] - 'a' + 'A'
		g.startSent = false
	}
	g.sentLeft--
	switch {
	case g.sentLeft == 0:
		if g.r.IntN(12) == 0 {
			b = append(b, '?')
		} else {
			b = append(b, '.')
		}
		g.startSent = true
		g.paraLeft--
		if g.paraLeft == 0 {
			b = append(b, "\n\n"...)
			return b
		}
	case g.r.IntN(9) == 0:
		b = append(b, ',')
	}
	return append(b, ' ')
}

// ---------------------------------------------------------------------------
// llm.chat

type llmChatParams struct {
	Provider      string        `json:"provider"`
	BaseURL       string        `json:"base_url"`
	Model         string        `json:"model"`
	APIKeyEnv     string        `json:"api_key_env"`
	System        string        `json:"system"`
	Prompt        string        `json:"prompt"`
	MaxTokens     int           `json:"max_tokens"`
	Temperature   *float64      `json:"temperature"`
	Timeout       dag.Duration  `json:"timeout"`
	MaxReplyBytes *dag.ByteSize `json:"max_reply_bytes"`
}

// ErrNoAPIKey is wrapped by llm.chat's error when the API key variable is
// empty or unset.
var ErrNoAPIKey = errors.New("API key not set")

// ErrStreamIncomplete is wrapped by llm.chat's error when the reply stream
// ends before its final event. It is retryable.
var ErrStreamIncomplete = errors.New("reply stream ended early")

// ModelError is an error event sent by a model API inside a reply stream
// (for example Anthropic's overloaded_error). Type is the API's error type.
type ModelError struct {
	Node, Provider, Type, Message string
}

// Error names the node, provider and error type.
func (e *ModelError) Error() string {
	return fmt.Sprintf("node %q: %s stream error %s: %s", e.Node, e.Provider, e.Type, e.Message)
}

// permanentModelErrors are error types that retrying the same request
// cannot fix.
var permanentModelErrors = map[string]bool{
	"invalid_request_error": true, "authentication_error": true, "permission_error": true,
	"not_found_error": true, "request_too_large": true, "invalid_api_key": true,
}

var llmProviders = map[string]struct{ baseURL, keyEnv string }{
	"openai":    {"https://api.openai.com/v1", "OPENAI_API_KEY"},
	"anthropic": {"https://api.anthropic.com", "ANTHROPIC_API_KEY"},
}

func llmChatType(opts *Options) dag.Type {
	return dag.Type{
		Name: "llm.chat",
		Doc: "Calls a model (OpenAI-compatible Chat Completions or the Anthropic Messages API) with stream:true; " +
			"the inputs are streamed into the request as the user message and the reply is written to the output delta by delta.",
		Output:       dag.KindBytes,
		StreamsInput: true,
		MinInputs:    0,
		MaxInputs:    -1,
		Params: []dag.Param{
			{Name: "provider", Type: "string", Default: "openai", Doc: `"openai" (POST {base_url}/chat/completions) or "anthropic" (POST {base_url}/v1/messages).`},
			{Name: "base_url", Type: "string", Default: "https://api.openai.com/v1 or https://api.anthropic.com", Doc: "API base URL (per provider)."},
			{Name: "model", Type: "string", Required: true, Doc: "Model name."},
			{Name: "api_key_env", Type: "string", Default: "OPENAI_API_KEY or ANTHROPIC_API_KEY", Doc: "Name of the environment variable holding the API key."},
			{Name: "system", Type: "string", Doc: "System prompt."},
			{Name: "prompt", Type: "string", Doc: "User message text; the inputs' bytes follow it after a blank line. When empty, the inputs alone are the user message."},
			{Name: "max_tokens", Type: "integer", Default: "1024", Doc: "Most tokens to generate."},
			{Name: "temperature", Type: "number", Doc: "Sampling temperature (provider default when unset)."},
			{Name: "timeout", Type: "duration", Default: "5m", Doc: "Bound on the whole call, reply included."},
			{Name: "max_reply_bytes", Type: "bytesize", Default: "16MiB", Doc: "Largest accepted reply text; more fails the node."},
		},
		New: func(spec *dag.NodeSpec) (dag.Node, error) {
			var p llmChatParams
			if err := dag.DecodeParams(spec.Params, &p); err != nil {
				return nil, err
			}
			return newLLMChat(opts, p)
		},
	}
}

type llmChat struct {
	opts     *Options
	p        llmChatParams
	endpoint *url.URL
	keyEnv   string
	timeout  time.Duration
	limit    int64
	prefix   []byte // request JSON up to the user content
	suffix   string // request JSON after it
}

func newLLMChat(opts *Options, p llmChatParams) (*llmChat, error) {
	var errs []error
	if p.Provider == "" {
		p.Provider = "openai"
	}
	prov, ok := llmProviders[p.Provider]
	if !ok {
		errs = append(errs, &dag.ParamError{Field: "provider", Message: fmt.Sprintf("%q is not one of openai, anthropic", p.Provider)})
	}
	if err := dag.Require("model", p.Model); err != nil {
		errs = append(errs, err)
	}
	if p.MaxTokens < 0 {
		errs = append(errs, &dag.ParamError{Field: "max_tokens", Message: "must be positive"})
	}
	if p.Temperature != nil && (*p.Temperature < 0 || *p.Temperature > 2) {
		errs = append(errs, &dag.ParamError{Field: "temperature", Message: fmt.Sprintf("%g is outside 0..2", *p.Temperature)})
	}
	c := &llmChat{opts: opts, p: p, keyEnv: p.APIKeyEnv, timeout: time.Duration(p.Timeout), limit: defaultMaxReplyLLM}
	if p.MaxReplyBytes != nil {
		c.limit = int64(*p.MaxReplyBytes)
		if c.limit <= 0 {
			errs = append(errs, &dag.ParamError{Field: "max_reply_bytes", Message: "must be positive"})
		}
	}
	if c.keyEnv == "" {
		c.keyEnv = prov.keyEnv
	} else if !envName.MatchString(c.keyEnv) {
		errs = append(errs, &dag.ParamError{Field: "api_key_env", Message: fmt.Sprintf("%q is not an environment variable name", c.keyEnv)})
	}
	base := p.BaseURL
	if base == "" {
		base = prov.baseURL
	}
	if ok {
		path := "/chat/completions"
		if p.Provider == "anthropic" {
			path = "/v1/messages"
		}
		u, err := url.Parse(strings.TrimRight(base, "/") + path)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, &dag.ParamError{Field: "base_url", Message: fmt.Sprintf("%q is not an absolute http(s) URL", base)})
		}
		c.endpoint = u
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if c.timeout == 0 {
		c.timeout = defaultLLMTimeout
	}
	if c.p.MaxTokens == 0 {
		c.p.MaxTokens = defaultLLMMaxTokens
	}
	c.prefix, c.suffix = c.requestFrame()
	return c, nil
}

// requestFrame returns the request JSON before and after the user message
// text, which is streamed between them.
func (c *llmChat) requestFrame() ([]byte, string) {
	var b bytes.Buffer
	str := func(s string) { j, _ := json.Marshal(s); b.Write(j) }
	b.WriteString(`{"model":`)
	str(c.p.Model)
	fmt.Fprintf(&b, `,"stream":true,"max_tokens":%d`, c.p.MaxTokens)
	if c.p.Temperature != nil {
		t, _ := json.Marshal(*c.p.Temperature)
		b.WriteString(`,"temperature":`)
		b.Write(t)
	}
	if c.p.Provider == "anthropic" {
		if c.p.System != "" {
			b.WriteString(`,"system":`)
			str(c.p.System)
		}
		b.WriteString(`,"messages":[`)
	} else {
		b.WriteString(`,"messages":[`)
		if c.p.System != "" {
			b.WriteString(`{"role":"system","content":`)
			str(c.p.System)
			b.WriteString(`},`)
		}
	}
	b.WriteString(`{"role":"user","content":"`)
	if c.p.Prompt != "" {
		j, _ := json.Marshal(c.p.Prompt)
		b.Write(j[1 : len(j)-1])
	}
	return b.Bytes(), `"}]}`
}

// chatBody is the streamed request body; closing it closes the inputs.
type chatBody struct {
	io.Reader
	ir *inputsReader
}

func (b *chatBody) Close() error { return b.ir.Close() }

func (c *llmChat) Run(ctx context.Context, in *dag.Inputs, out *dag.Output) error {
	node := out.NodeID()
	key := c.opts.Getenv(c.keyEnv)
	if key == "" {
		return dag.Permanent(fmt.Errorf("node %q: llm.chat: environment variable %s (param api_key_env) is empty or unset: %w", node, c.keyEnv, ErrNoAPIKey))
	}
	target := "POST " + redactURL(c.endpoint)
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout, fmt.Errorf("llm.chat %s: no complete reply within timeout %s: %w", target, c.timeout, context.DeadlineExceeded))
	defer cancel()

	sep := "\n\n"
	parts := []io.Reader{bytes.NewReader(c.prefix)}
	ir := newInputsReader(ctx, in, sep)
	if c.p.Prompt != "" && in.Len() > 0 {
		parts = append(parts, strings.NewReader(`\n\n`) /* the blank line, JSON-escaped */)
	}
	parts = append(parts, &jsonStringReader{r: ir}, strings.NewReader(c.suffix))
	body := &chatBody{Reader: io.MultiReader(parts...), ir: ir}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint.String(), body)
	if err != nil {
		return dag.Permanent(fmt.Errorf("node %q: %s: %w", node, target, err))
	}
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	if c.p.Provider == "anthropic" {
		req.Header.Set("x-api-key", key)
		req.Header.Set("anthropic-version", "2023-06-01")
	} else {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	defer waitBodyClosed(ir, cancel)
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("node %q: llm.chat %s: %w", node, target, contextErr(ctx, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return statusError(node, http.MethodPost, c.endpoint, resp)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return dag.Permanent(statusErrorWithMessage(node, c.endpoint, resp, fmt.Sprintf("expected a text/event-stream reply, got Content-Type %q", ct)))
	}
	w, err := out.Writer()
	if err != nil {
		return err
	}
	lw := &limitWriter{w: w, limit: c.limit, what: fmt.Sprintf("node %q: llm.chat reply (max_reply_bytes)", node)}
	st := &chatStream{node: node, provider: c.p.Provider, w: lw}
	err = st.read(ctx, resp.Body)
	if info := dag.NodeInfoFrom(ctx); info != nil {
		info.SetMetric("prompt_bytes", ir.Bytes()+int64(len(c.p.Prompt)))
		info.SetMetric("reply_bytes", lw.n)
		if st.inTokens > 0 {
			info.SetMetric("input_tokens", st.inTokens)
		}
		if st.outTokens > 0 {
			info.SetMetric("output_tokens", st.outTokens)
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrResponseTooLarge):
		return dag.Permanent(err)
	default:
		var me *ModelError
		if errors.As(err, &me) && permanentModelErrors[me.Type] {
			return dag.Permanent(err)
		}
		return err
	}
}

// statusErrorWithMessage is an error for a 200 response of the wrong kind.
func statusErrorWithMessage(node string, u *url.URL, resp *http.Response, msg string) error {
	buf := make([]byte, 256)
	n, _ := io.ReadFull(resp.Body, buf)
	return fmt.Errorf("node %q: POST %s: %s; body starts %q", node, redactURL(u), msg, buf[:n])
}

// chatStream decodes one provider's SSE reply and writes the text deltas.
type chatStream struct {
	node, provider      string
	w                   *limitWriter
	inTokens, outTokens int64
	scratch             []byte
}

// write writes one delta through a reused buffer (io.WriteString would
// allocate a copy of every delta).
func (s *chatStream) write(text string) error {
	s.scratch = append(s.scratch[:0], text...)
	_, err := s.w.Write(s.scratch)
	return err
}

// maxEventBytes bounds one SSE event, so a broken server cannot make the
// node buffer an unbounded line.
const maxEventBytes = 4 << 20

func (s *chatStream) read(ctx context.Context, r io.Reader) error {
	sr := &sseReader{br: bufio.NewReaderSize(r, 32<<10), max: maxEventBytes}
	for {
		event, data, err := sr.next()
		if err == io.EOF {
			return fmt.Errorf("node %q: %s reply after %d bytes: %w", s.node, s.provider, s.w.n, ErrStreamIncomplete)
		}
		if err != nil {
			if ctx.Err() != nil {
				err = contextErr(ctx, err)
			}
			return fmt.Errorf("node %q: %s reply stream: %w", s.node, s.provider, err)
		}
		var done bool
		if s.provider == "anthropic" {
			done, err = s.anthropic(event, data)
		} else {
			done, err = s.openai(data)
		}
		if err != nil || done {
			return err
		}
	}
}

func (s *chatStream) openai(data []byte) (bool, error) {
	if string(bytes.TrimSpace(data)) == "[DONE]" {
		return true, nil
	}
	var ev struct {
		Choices []struct {
			Delta struct {
				Content string `json:"content"`
			} `json:"delta"`
		} `json:"choices"`
		Usage *struct {
			PromptTokens     int64 `json:"prompt_tokens"`
			CompletionTokens int64 `json:"completion_tokens"`
		} `json:"usage"`
		Error *struct {
			Type    string `json:"type"`
			Code    any    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(data, &ev); err != nil {
		return false, fmt.Errorf("node %q: openai reply: bad event %q: %w", s.node, excerpt(data), err)
	}
	if ev.Error != nil {
		typ := ev.Error.Type
		if c, ok := ev.Error.Code.(string); ok && c != "" {
			typ = c
		}
		return false, &ModelError{Node: s.node, Provider: "openai", Type: typ, Message: ev.Error.Message}
	}
	if ev.Usage != nil {
		s.inTokens, s.outTokens = ev.Usage.PromptTokens, ev.Usage.CompletionTokens
	}
	for _, ch := range ev.Choices {
		if ch.Delta.Content != "" {
			if err := s.write(ch.Delta.Content); err != nil {
				return false, err
			}
		}
	}
	return false, nil
}

func (s *chatStream) anthropic(event string, data []byte) (bool, error) {
	var ev struct {
		Type  string `json:"type"`
		Delta struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"delta"`
		Message struct {
			Usage struct {
				InputTokens int64 `json:"input_tokens"`
			} `json:"usage"`
		} `json:"message"`
		Usage struct {
			OutputTokens int64 `json:"output_tokens"`
		} `json:"usage"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(data, &ev); err != nil {
		return false, fmt.Errorf("node %q: anthropic reply: bad %s event %q: %w", s.node, event, excerpt(data), err)
	}
	if event == "" {
		event = ev.Type
	}
	switch event {
	case "content_block_delta":
		if ev.Delta.Text != "" {
			if err := s.write(ev.Delta.Text); err != nil {
				return false, err
			}
		}
	case "message_start":
		s.inTokens = ev.Message.Usage.InputTokens
	case "message_delta":
		s.outTokens = ev.Usage.OutputTokens
	case "message_stop":
		return true, nil
	case "error":
		return false, &ModelError{Node: s.node, Provider: "anthropic", Type: ev.Error.Type, Message: ev.Error.Message}
	}
	return false, nil
}

func excerpt(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// sseReader reads Server-Sent Events: "event:" and "data:" fields up to a
// blank line. Events over max bytes are an error.
type sseReader struct {
	br    *bufio.Reader
	max   int
	event string
	data  []byte
	line  []byte
}

// next returns the next event with data (io.EOF at the end).
func (s *sseReader) next() (string, []byte, error) {
	s.event, s.data = "", s.data[:0]
	has := false
	for {
		line, err := s.readLine()
		if err == io.EOF && has {
			return s.event, s.data, nil
		}
		if err != nil {
			return "", nil, err
		}
		if len(line) == 0 {
			if has {
				return s.event, s.data, nil
			}
			s.event = ""
			continue
		}
		if line[0] == ':' {
			continue // comment / keep-alive
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			s.event = string(value)
		case "data":
			if has {
				s.data = append(s.data, '\n')
			}
			if len(s.data)+len(value) > s.max {
				return "", nil, fmt.Errorf("event over %d bytes", s.max)
			}
			s.data = append(s.data, value...)
			has = true
		}
	}
}

// readLine returns one line without its end, bounded by max.
func (s *sseReader) readLine() ([]byte, error) {
	s.line = s.line[:0]
	for {
		frag, err := s.br.ReadSlice('\n')
		if len(s.line)+len(frag) > s.max+2 {
			return nil, fmt.Errorf("event line over %d bytes", s.max)
		}
		s.line = append(s.line, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil && (err != io.EOF || len(s.line) == 0) {
			return nil, err
		}
		return bytes.TrimRight(s.line, "\r\n"), nil
	}
}

// jsonStringReader reads r and returns its bytes escaped as the inside of a
// JSON string, a piece at a time. Invalid UTF-8 becomes U+FFFD; a rune split
// between two reads of r is kept whole.
type jsonStringReader struct {
	r     io.Reader
	raw   []byte
	carry int // bytes of an incomplete rune at the start of raw
	out   []byte
	off   int
	eof   bool
	err   error
}

const hexDigits = "0123456789abcdef"

func (j *jsonStringReader) Read(p []byte) (int, error) {
	for j.off == len(j.out) {
		if j.err != nil {
			return 0, j.err
		}
		if j.eof {
			return 0, io.EOF
		}
		j.fill()
	}
	n := copy(p, j.out[j.off:])
	j.off += n
	return n, nil
}

func (j *jsonStringReader) fill() {
	if j.raw == nil {
		j.raw = make([]byte, 16<<10)
	}
	n, err := j.r.Read(j.raw[j.carry:])
	src := j.raw[:j.carry+n]
	if err == io.EOF {
		j.eof = true
	} else if err != nil {
		j.err = err
	}
	j.out, j.off = j.out[:0], 0
	i := 0
	for i < len(src) {
		c := src[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				j.out = append(j.out, '\\', c)
			case c == '\n':
				j.out = append(j.out, '\\', 'n')
			case c == '\r':
				j.out = append(j.out, '\\', 'r')
			case c == '\t':
				j.out = append(j.out, '\\', 't')
			case c < 0x20:
				j.out = append(j.out, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				j.out = append(j.out, c)
			}
			i++
			continue
		}
		if !utf8.FullRune(src[i:]) && !j.eof && j.err == nil {
			break // keep the start of a split rune for the next read
		}
		r, size := utf8.DecodeRune(src[i:])
		if r == utf8.RuneError && size == 1 {
			j.out = append(j.out, `\ufffd`...)
		} else {
			j.out = append(j.out, src[i:i+size]...)
		}
		i += size
	}
	j.carry = copy(j.raw, src[i:])
}
