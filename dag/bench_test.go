package dag

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// BenchmarkExecutorOverhead runs a 10,000-node DAG of no-op nodes (each
// node consumes up to two earlier nodes) and reports the executor's cost
// per node: scheduling, reference counting, output bookkeeping, events off.
func BenchmarkExecutorOverhead(b *testing.B) {
	for _, shape := range []string{"wide", "random"} {
		b.Run(shape, func(b *testing.B) {
			reg := NewRegistry()
			reg.MustRegister(Type{Name: "noop", Output: KindBytes, MaxInputs: -1, New: func(*NodeSpec) (Node, error) {
				return NodeFunc(func(context.Context, *Inputs, *Output) error { return nil }), nil
			}})
			const n = 10000
			var sb strings.Builder
			sb.WriteString(`{"name":"noop","nodes":[`)
			rng := rand.New(rand.NewPCG(1, 1))
			for i := 0; i < n; i++ {
				if i > 0 {
					sb.WriteString(",")
				}
				var ins []string
				if shape == "random" && i > 0 {
					for _, j := range []int{rng.IntN(i), rng.IntN(i)} {
						s := fmt.Sprintf(`"n%d"`, j)
						if len(ins) == 0 || ins[0] != s {
							ins = append(ins, s)
						}
					}
				}
				fmt.Fprintf(&sb, `{"id":"n%d","type":"noop","inputs":[%s]}`, i, strings.Join(ins, ","))
			}
			sb.WriteString("]}")
			wf, err := Parse([]byte(sb.String()), LoadLimits{})
			if err != nil {
				b.Fatal(err)
			}
			p, err := Validate(wf, reg)
			if err != nil {
				b.Fatal(err)
			}
			ex, _ := New(Config{SampleInterval: time.Second})
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := ex.Run(context.Background(), p)
				if err != nil {
					b.Fatal(err)
				}
				res.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n/1000, "µs/node")
		})
	}
}
