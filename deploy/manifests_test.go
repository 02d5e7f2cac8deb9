package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"

	"github.com/dagrun/dagrun/worker"
)

// doc is one YAML document with the file it came from.
type doc struct {
	file string
	m    map[string]any
}

func (d doc) String() string {
	return fmt.Sprintf("%s: %v %v", d.file, d.m["kind"], get(d.m, "metadata", "name"))
}

// get walks maps and lists ("0" indexes a list); nil when absent.
func get(v any, path ...string) any {
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func str(v any, path ...string) string { s, _ := get(v, path...).(string); return s }

func loadAll(t *testing.T) []doc {
	t.Helper()
	files, _ := filepath.Glob("*.yaml")
	if len(files) < 4 {
		t.Fatalf("found %d manifests: %v", len(files), files)
	}
	var out []doc
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for i := 0; ; i++ {
			var m map[string]any
			err := dec.Decode(&m)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			if m == nil {
				continue
			}
			d := doc{file: f, m: m}
			for _, field := range []string{"apiVersion", "kind"} {
				if str(m, field) == "" {
					t.Errorf("%s document %d: missing %s", f, i, field)
				}
			}
			if str(m, "kind") != "Kustomization" && str(m, "metadata", "name") == "" {
				t.Errorf("%s document %d: missing metadata.name", f, i)
			}
			out = append(out, d)
		}
	}
	return out
}

func byKind(docs []doc, file, kind string) doc {
	for _, d := range docs {
		if d.file == file && str(d.m, "kind") == kind {
			return d
		}
	}
	return doc{}
}

// quantity parses the Kubernetes memory quantities used here (Ki, Mi, Gi)
// and GOMEMLIMIT's (KiB, MiB, GiB).
func quantity(t *testing.T, what, s string) int64 {
	t.Helper()
	units := map[string]int64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
	for _, u := range []string{"KiB", "MiB", "GiB", "Ki", "Mi", "Gi"} {
		if n, ok := strings.CutSuffix(s, u); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				t.Fatalf("%s: bad quantity %q", what, s)
			}
			return v * units[u]
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%s: bad quantity %q", what, s)
	}
	return v
}

func labelsMatch(sel, labels any) bool {
	s, _ := sel.(map[string]any)
	l, _ := labels.(map[string]any)
	if len(s) == 0 {
		return false
	}
	for k, v := range s {
		if l[k] != v {
			return false
		}
	}
	return true
}

func argValue(args []any, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(fmt.Sprint(a), "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

func TestManifests(t *testing.T) {
	docs := loadAll(t)
	dep := byKind(docs, "worker.yaml", "Deployment")
	if dep.m == nil {
		t.Fatal("worker.yaml has no Deployment")
	}
	name := str(dep.m, "metadata", "name")
	podLabels := get(dep.m, "spec", "template", "metadata", "labels")
	if !labelsMatch(get(dep.m, "spec", "selector", "matchLabels"), podLabels) {
		t.Error("Deployment selector does not match its pod labels")
	}
	c := get(dep.m, "spec", "template", "spec", "containers", "0")
	if str(c, "name") != "worker" || str(c, "image") == "" {
		t.Fatalf("first container: name %q image %q", str(c, "name"), str(c, "image"))
	}
	args, _ := get(c, "args").([]any)
	if len(args) == 0 || args[0] != "worker" {
		t.Fatalf("container args %v: want the worker command", args)
	}
	limit := quantity(t, "limits.memory", str(c, "resources", "limits", "memory"))
	if req := quantity(t, "requests.memory", str(c, "resources", "requests", "memory")); req != limit {
		t.Errorf("memory request %d != limit %d: the scheduler must reserve what the worker budgets against", req, limit)
	}
	env := map[string]bool{}
	var gomem int64
	for _, e := range get(c, "env").([]any) {
		env[str(e, "name")] = true
		if str(e, "name") == "GOMEMLIMIT" {
			gomem = quantity(t, "GOMEMLIMIT", str(e, "value"))
		}
	}
	if f := float64(gomem) / float64(limit); f < 0.8 || f > 0.95 {
		t.Errorf("GOMEMLIMIT is %.2f of the memory limit, want 0.80-0.95", f)
	}
	ports := map[string]int{}
	for _, p := range get(c, "ports").([]any) {
		ports[str(p, "name")] = get(p, "containerPort").(int)
	}
	metricsAddr := argValue(args, "metrics-addr")
	if metricsAddr != ":"+strconv.Itoa(ports["metrics"]) {
		t.Errorf("--metrics-addr %q does not serve the metrics port %d", metricsAddr, ports["metrics"])
	}
	for probe, path := range map[string]string{"livenessProbe": "/livez", "readinessProbe": "/readyz"} {
		if str(c, probe, "httpGet", "path") != path || ports[str(c, probe, "httpGet", "port")] == 0 {
			t.Errorf("%s: path %q port %q, want %s on a named container port", probe, str(c, probe, "httpGet", "path"), str(c, probe, "httpGet", "port"), path)
		}
	}
	if to, _ := get(c, "livenessProbe", "timeoutSeconds").(int); to < 5 {
		t.Errorf("liveness timeoutSeconds %d < 5: a CPU-saturated worker is slow to answer but alive", to)
	}
	drain, err := time.ParseDuration(argValue(args, "drain-grace"))
	if err != nil {
		t.Fatalf("--drain-grace: %v", err)
	}
	grace, _ := get(dep.m, "spec", "template", "spec", "terminationGracePeriodSeconds").(int)
	if time.Duration(grace)*time.Second < drain+10*time.Second {
		t.Errorf("terminationGracePeriodSeconds %d < drain grace %v + 10s (cancel and put back)", grace, drain)
	}
	for _, v := range get(dep.m, "spec", "template", "spec", "volumes").([]any) {
		if str(v, "emptyDir", "medium") == "Memory" {
			t.Errorf("volume %s is memory-backed: its files count against the memory limit", str(v, "name"))
		}
	}

	svc := byKind(docs, "worker.yaml", "Service")
	if !labelsMatch(get(svc.m, "spec", "selector"), podLabels) || ports[str(svc.m, "spec", "ports", "0", "targetPort")] == 0 {
		t.Error("metrics Service does not select the worker pods' metrics port")
	}

	so := byKind(docs, "keda.yaml", "ScaledObject")
	if str(so.m, "apiVersion") != "keda.sh/v1alpha1" || str(so.m, "spec", "scaleTargetRef", "name") != name {
		t.Fatalf("ScaledObject %v does not target Deployment %s", so, name)
	}
	queue := argValue(args, "queue")
	kinds := map[string]bool{}
	for _, tr := range get(so.m, "spec", "triggers").([]any) {
		kinds[str(tr, "type")] = true
		switch str(tr, "type") {
		case "redis":
			if got := str(tr, "metadata", "listName"); got != "{"+queue+"}:pending" {
				t.Errorf("redis trigger listName %q, want the pending list {%s}:pending", got, queue)
			}
			if a := str(tr, "metadata", "addressFromEnv"); !env[a] {
				t.Errorf("redis trigger addressFromEnv %q is not set on the container", a)
			}
			if str(tr, "metadata", "listLength") != argValue(args, "concurrency") {
				t.Errorf("redis trigger listLength %q != --concurrency %q", str(tr, "metadata", "listLength"), argValue(args, "concurrency"))
			}
		case "prometheus":
			checkQuery(t, "keda "+str(tr, "name"), str(tr, "metadata", "query"))
			if str(tr, "metadata", "threshold") == "" || str(tr, "metadata", "serverAddress") == "" {
				t.Errorf("prometheus trigger %s lacks threshold or serverAddress", str(tr, "name"))
			}
		}
	}
	if !kinds["redis"] || !kinds["prometheus"] {
		t.Errorf("ScaledObject triggers %v: want redis (pending list) and prometheus (gate paused / working set)", kinds)
	}

	pm := byKind(docs, "podmonitor.yaml", "PodMonitor")
	if !labelsMatch(get(pm.m, "spec", "selector", "matchLabels"), podLabels) || ports[str(pm.m, "spec", "podMetricsEndpoints", "0", "port")] == 0 {
		t.Error("PodMonitor does not select the worker pods' metrics port")
	}

	k := byKind(docs, "kustomization.yaml", "Kustomization")
	for _, r := range get(k.m, "resources").([]any) {
		if _, err := os.Stat(fmt.Sprint(r)); err != nil {
			t.Errorf("kustomization resource %v: %v", r, err)
		}
	}
	patch := byKind(docs, "cgroup-writable-patch.yaml", "Deployment")
	if str(patch.m, "metadata", "name") != name {
		t.Errorf("cgroup patch targets %q, want %s", str(patch.m, "metadata", "name"), name)
	}
	pargs, _ := get(patch.m, "spec", "template", "spec", "containers", "0", "args").([]any)
	if argValue(pargs, "child-mode") != "cgroup" || argValue(pargs, "drain-grace") != argValue(args, "drain-grace") {
		t.Errorf("cgroup patch args %v: want --child-mode=cgroup and the same drain grace", pargs)
	}
}

// registry is the set of metric names a worker registers.
var registryOnce = sync.OnceValue(func() map[string]bool {
	rec := &recorder{names: map[string]bool{}}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	_, err := worker.New(worker.Config{Redis: rdb, Registerer: rec, LiveOutputBytes: func() int64 { return 0 },
		Executor: worker.ExecutorFunc(func(ctx context.Context, j *worker.Job) (worker.Result, error) { return worker.Result{}, nil })})
	if err != nil {
		panic(err)
	}
	return rec.names
})

// recorder is a Registerer that records the names of what it is given.
type recorder struct{ names map[string]bool }

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *recorder) Unregister(prometheus.Collector) bool { return true }

var metricRef = regexp.MustCompile(`\b(dagrun_[a-z0-9_]+|kube_[a-z0-9_]+)`)

// checkQuery fails for a dagrun_ metric the worker does not export.
// kube_ metrics come from kube-state-metrics.
func checkQuery(t *testing.T, where, q string) {
	t.Helper()
	registry := registryOnce()
	refs := metricRef.FindAllString(q, -1)
	if len(refs) == 0 {
		t.Errorf("%s: query %q uses no dagrun metric", where, q)
	}
	for _, n := range refs {
		if strings.HasPrefix(n, "kube_") {
			continue
		}
		base := n
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(n, s); ok && registry[b] {
				base = b
			}
		}
		if !registry[base] {
			t.Errorf("%s: query %q uses %s, which the worker does not export", where, q, n)
		}
	}
}

func TestDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard uid %q title %q panels %d", d.UID, d.Title, len(d.Panels))
	}
	used := map[string]bool{}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			checkQuery(t, "panel "+p.Title, tg.Expr)
			for _, n := range metricRef.FindAllString(tg.Expr, -1) {
				used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_count"), "_sum")] = true
			}
		}
	}
	// Every dagrun metric is on the dashboard and documented in METRICS.md.
	doc, err := os.ReadFile("../ops/METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for n := range registryOnce() {
		if !strings.HasPrefix(n, "dagrun_") {
			continue
		}
		if !used[n] {
			missing = append(missing, n+" (dashboard)")
		}
		if !bytes.Contains(doc, []byte("`"+n+"`")) {
			missing = append(missing, n+" (ops/METRICS.md)")
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("metric not shown: %s", m)
	}
}
