package spill

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// StoreCloser is a Store that must be closed.
type StoreCloser interface {
	Store
	io.Closer
}

// DefaultDir returns the embedded default spill directory,
// os.UserCacheDir()/dagrun/spill.
func DefaultDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("spill: default directory: %w", err)
	}
	return filepath.Join(d, "dagrun", "spill"), nil
}

// Open returns a store for rawURL:
//
//	""                                          directory store in DefaultDir()
//	dir:///var/lib/dagrun/spill?ttl=72h          directory store
//	redis://user:pass@host:6379/0?ttl=24h&prefix=tenant-a
//	rediss://host:6380/0                         Redis over TLS
//	redis://host1:6379?addr=host2:6379&addr=...  Redis Cluster
//
// Store parameters in the query: ttl (a Go duration), prefix, chunk_size
// (bytes), read_ahead, level (1-4). Every other query parameter goes to
// go-redis (for example dial_timeout). A Redis store pings the server and
// fails with ErrUnavailable when it cannot be reached; it owns the client
// it created and closes it in Close.
func Open(ctx context.Context, rawURL string) (StoreCloser, error) {
	if rawURL == "" {
		dir, err := DefaultDir()
		if err != nil {
			return nil, err
		}
		return NewDir(dir, Config{})
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("spill: open: %w", err)
	}
	q := u.Query()
	cfg, err := configFromQuery(q)
	if err != nil {
		return nil, fmt.Errorf("spill: open %s: %w", redacted(u), err)
	}
	u.RawQuery = q.Encode()
	switch u.Scheme {
	case "dir", "file":
		if u.Host != "" || u.Path == "" {
			return nil, fmt.Errorf("spill: open %s: want dir:///absolute/path", redacted(u))
		}
		return NewDir(u.Path, cfg)
	case "redis", "rediss":
		var client redis.UniversalClient
		if q.Has("addr") {
			opt, err := redis.ParseClusterURL(u.String())
			if err != nil {
				return nil, fmt.Errorf("spill: open %s: %w", redacted(u), err)
			}
			client = redis.NewClusterClient(opt)
		} else {
			opt, err := redis.ParseURL(u.String())
			if err != nil {
				return nil, fmt.Errorf("spill: open %s: %w", redacted(u), err)
			}
			client = redis.NewClient(opt)
		}
		s, err := NewRedis(client, cfg)
		if err != nil {
			client.Close()
			return nil, err
		}
		s.owned = true
		if err := s.retry(ctx, func() error { return client.Ping(ctx).Err() }); err != nil {
			s.Close()
			return nil, fmt.Errorf("spill: open %s: %w", redacted(u), s.classify(err))
		}
		return s, nil
	default:
		return nil, fmt.Errorf("spill: open %s: unknown scheme %q (want redis, rediss or dir)", redacted(u), u.Scheme)
	}
}

func redacted(u *url.URL) string { return u.Redacted() }

// configFromQuery takes the store's own parameters out of q.
func configFromQuery(q url.Values) (Config, error) {
	var cfg Config
	take := func(name string) (string, bool) {
		if !q.Has(name) {
			return "", false
		}
		v := q.Get(name)
		q.Del(name)
		return v, true
	}
	if v, ok := take("ttl"); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			return cfg, fmt.Errorf("parameter ttl: %w", err)
		}
		cfg.TTL = d
	}
	if v, ok := take("prefix"); ok {
		cfg.Prefix = v
	}
	for _, p := range []struct {
		name string
		dst  *int
	}{{"chunk_size", &cfg.ChunkSize}, {"read_ahead", &cfg.ReadAhead}, {"level", &cfg.Level}} {
		if v, ok := take(p.name); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				return cfg, fmt.Errorf("parameter %s: %w", p.name, err)
			}
			*p.dst = n
		}
	}
	return cfg, cfg.Validate()
}
