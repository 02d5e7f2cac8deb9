package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves /livez, /readyz and, when the Config has a Gatherer (or a
// Registerer that is one), /metrics. It is safe to serve before Run starts.
//
// /livez answers 200 while the process can answer at all: it takes no lock
// and touches neither Redis nor the jobs, so a busy worker is never killed
// for being busy. /readyz answers 503 before Run starts, while the worker
// drains, and while Redis does not answer a PING within 500ms.
func (w *Worker) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/livez", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/plain")
		_, _ = rw.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/plain")
		if err := w.Ready(r.Context()); err != nil {
			rw.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(rw, "not ready: %v\n", err)
			return
		}
		_, _ = rw.Write([]byte("ok\n"))
	})
	if w.cfg.Gatherer != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(w.cfg.Gatherer, promhttp.HandlerOpts{Timeout: 10 * time.Second}))
	}
	return mux
}

// Errors Ready reports.
var (
	ErrNotStarted = errors.New("worker: not running")
	ErrRedisDown  = errors.New("worker: redis unreachable")
)

// Ready reports why the worker should not get traffic (nil when ready):
// ErrNotStarted, ErrDraining or ErrRedisDown.
func (w *Worker) Ready(ctx context.Context) error {
	switch {
	case w.draining.Load():
		return ErrDraining
	case !w.started.Load():
		return ErrNotStarted
	}
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if err := w.cfg.Redis.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrRedisDown, err)
	}
	return nil
}

// serve listens on MetricsAddr; the returned func shuts the server down.
func (w *Worker) serve() (func(), error) {
	if w.cfg.MetricsAddr == "" {
		return func() {}, nil
	}
	l, err := net.Listen("tcp", w.cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("worker: metrics listener %s: %w", w.cfg.MetricsAddr, err)
	}
	srv := &http.Server{Handler: w.Handler(), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			w.log.Warn("metrics server", "err", err)
		}
	}()
	w.log.Info("serving metrics and health", "addr", l.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}
