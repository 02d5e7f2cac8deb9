package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxToolBytes bounds one fake tool response.
const maxToolBytes = 64 << 20

// ToolServer is a local fake of the incident's tool APIs (SerpApi, Exa,
// Elasticsearch, Composio). Every GET answers with deterministic JSON in
// the shape of that API; the query parameters bytes (approximate response
// size, default 100000) and seed choose its size and content. It listens
// on a loopback port; Close stops it.
type ToolServer struct {
	// URL is the server's base URL, for example http://127.0.0.1:40123.
	URL  string
	srv  *http.Server
	ln   net.Listener
	errc chan error
}

// StartToolServer starts a ToolServer on a free loopback port.
func StartToolServer() (*ToolServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: tool server: %w", err)
	}
	ts := &ToolServer{URL: "http://" + ln.Addr().String(), ln: ln, errc: make(chan error, 1)}
	ts.srv = &http.Server{Handler: http.HandlerFunc(serveTool), ReadHeaderTimeout: 10 * time.Second}
	go func() { ts.errc <- ts.srv.Serve(ln) }()
	return ts, nil
}

// Close stops the server and waits for it.
func (ts *ToolServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := ts.srv.Shutdown(ctx)
	if serr := <-ts.errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

func serveTool(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	size := int64(100000)
	if s := q.Get("bytes"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || n > maxToolBytes {
			http.Error(w, fmt.Sprintf("bytes: want 0..%d, got %q", maxToolBytes, s), http.StatusBadRequest)
			return
		}
		size = n
	}
	seed, _ := strconv.ParseUint(q.Get("seed"), 10, 64)
	body, err := ToolResponse(r.URL.Path, q.Get("q"), seed, size)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

// ToolResponse returns the fake JSON answer of a tool API: path selects the
// API (a path containing serpapi, exa, elasticsearch or composio), query is
// echoed, seed fixes the content and size is the approximate length in
// bytes (the result ends at the first whole item past it).
func ToolResponse(path, query string, seed uint64, size int64) ([]byte, error) {
	g := &words{s: seed*0x9E3779B97F4A7C15 + 1}
	var items []any
	var wrap func() any
	var mk func(i int) any
	switch {
	case strings.Contains(path, "serpapi"):
		mk = func(i int) any {
			return map[string]any{"position": i + 1, "title": g.sentence(8), "link": "https://example.com/" + g.word() + "/" + strconv.Itoa(i),
				"displayed_link": "example.com › " + g.word(), "snippet": g.sentence(60), "date": "2026-04-14", "source": g.word()}
		}
		wrap = func() any {
			return map[string]any{"search_metadata": map[string]any{"status": "Success", "total_time_taken": 1.21},
				"search_parameters": map[string]any{"engine": "google", "q": query}, "organic_results": items}
		}
	case strings.Contains(path, "exa"):
		mk = func(i int) any {
			return map[string]any{"id": "https://example.org/" + strconv.Itoa(i), "url": "https://example.org/" + g.word(), "title": g.sentence(10),
				"publishedDate": "2026-03-01T00:00:00.000Z", "author": g.word(), "score": 0.5, "text": g.sentence(400)}
		}
		wrap = func() any {
			return map[string]any{"requestId": fmt.Sprintf("%016x", seed), "resolvedSearchType": "neural", "results": items}
		}
	case strings.Contains(path, "elasticsearch"):
		mk = func(i int) any {
			return map[string]any{"_index": "deals", "_id": strconv.Itoa(i), "_score": 1.0, "_source": map[string]any{
				"company": g.sentence(3), "sector": g.word(), "value_eur": i * 1000, "summary": g.sentence(120)}}
		}
		wrap = func() any {
			return map[string]any{"took": 12, "timed_out": false, "hits": map[string]any{"total": map[string]any{"value": len(items), "relation": "eq"}, "hits": items}}
		}
	case strings.Contains(path, "composio"):
		mk = func(i int) any {
			return map[string]any{"id": i, "name": g.sentence(3), "owner": g.word(), "stage": g.word(), "notes": g.sentence(80)}
		}
		wrap = func() any {
			return map[string]any{"successful": true, "error": nil, "data": map[string]any{"items": items}}
		}
	default:
		return nil, fmt.Errorf("bench: no fake tool at %q (want a path containing serpapi, exa, elasticsearch or composio)", path)
	}
	var est int64
	for i := 0; est < size; i++ {
		it := mk(i)
		ib, err := json.Marshal(it)
		if err != nil {
			return nil, err
		}
		est += int64(len(ib)) + 1
		items = append(items, it)
	}
	b, err := json.Marshal(wrap())
	if err != nil {
		return nil, err
	}
	return bytes.TrimSpace(b), nil
}

// words is a deterministic generator of English-like words.
type words struct{ s uint64 }

var vocabulary = strings.Fields("the market growth revenue company deal acquisition target sector nursery provider report " +
	"strategy pricing competitor analysis customer margin valuation risk opportunity capital investment board " +
	"quarter forecast europe nordics client proposal approach delivery team partner contract regulatory review")

func (g *words) next() uint64 {
	g.s ^= g.s << 13
	g.s ^= g.s >> 7
	g.s ^= g.s << 17
	return g.s
}

func (g *words) word() string { return vocabulary[g.next()%uint64(len(vocabulary))] }

func (g *words) sentence(n int) string {
	var sb strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(g.word())
	}
	return sb.String()
}
