package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
)

// Generators of realistic, compressible-but-not-trivial outputs. Each is a
// streaming io.Reader with a few KiB of state, so a 256 MiB output never
// sits in memory.

var (
	regions  = []string{"EMEA", "APAC", "NA-East", "NA-West", "LATAM", "DACH", "Nordics", "UK&I"}
	products = []string{"Widget Pro 12\"", "Gadget Mini", "Sensor Array v2", "Cable Kit (3m)", "Controller X", "Dock Station", "Battery Pack 20Ah", "Mount Bracket"}
	statuses = []string{"paid", "pending", "overdue", "refunded", "disputed"}
	first    = []string{"Anna", "Bjorn", "Chen", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemal", "Lucia", "Mateo", "Noor", "Olga", "Pierre"}
	last     = []string{"Schmidt", "Larsen", "Wang", "Ivanov", "Rossi", "Haddad", "Okafor", "Tanaka", "Silva", "Berg", "Yilmaz", "Garcia", "Novak", "Khan", "Dubois", "Murphy"}
	vocab    = strings.Fields(`the a of to and in that is for it as with was on be by this are or at from an which have not but has they their can its more also were been one all would other these some into when there may such will each than two between only about use most first over new data model results however during both after system used based time high using shown number different table analysis figure while where value our method work large under because revenue quarter growth margin customer segment forecast pipeline region increase decrease compared previous year operating expenses summary recommendation risk`)
)

type genReader struct {
	buf  bytes.Buffer
	left int64
	next func(*bytes.Buffer)
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.left <= 0 {
		return 0, io.EOF
	}
	for g.buf.Len() < len(p) && int64(g.buf.Len()) < g.left {
		g.next(&g.buf)
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	n, _ := g.buf.Read(p)
	g.left -= int64(n)
	if g.buf.Len() == 0 {
		g.buf.Reset()
	}
	return n, nil
}

func row(r *rand.Rand) (id uint32, date, cust, region, product string, qty int, price float64, status, comment string) {
	id = r.Uint32()
	date = fmt.Sprintf("2026-%02d-%02d", 1+r.IntN(12), 1+r.IntN(28))
	cust = first[r.IntN(len(first))] + " " + last[r.IntN(len(last))]
	region, product = regions[r.IntN(len(regions))], products[r.IntN(len(products))]
	qty, price = 1+r.IntN(500), float64(r.IntN(100000))/100
	status = statuses[r.IntN(len(statuses))]
	comment = sentence(r, 3+r.IntN(8))
	return
}

func sentence(r *rand.Rand, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		// Zipf-like: low indexes much more frequent.
		k := int(float64(len(vocab)) * r.Float64() * r.Float64())
		b.WriteString(vocab[k])
	}
	return b.String()
}

// Dataset names a generator.
type Dataset struct {
	Name string
	New  func(seed uint64, size int64) io.Reader
}

var datasets = []Dataset{
	{"sheet-jsonl", func(seed uint64, size int64) io.Reader {
		r := rand.New(rand.NewPCG(seed, 1))
		return &genReader{left: size, next: func(b *bytes.Buffer) {
			id, d, c, reg, p, q, pr, st, cm := row(r)
			fmt.Fprintf(b, `{"invoice_id":%d,"date":"%s","customer":"%s","region":"%s","product":"%s","qty":%d,"unit_price":%.2f,"status":"%s","comment":"%s"}`+"\n", id, d, c, reg, p, q, pr, st, cm)
		}}
	}},
	{"sheet-csv", func(seed uint64, size int64) io.Reader {
		r := rand.New(rand.NewPCG(seed, 2))
		first := true
		return &genReader{left: size, next: func(b *bytes.Buffer) {
			if first {
				b.WriteString("invoice_id,date,customer,region,product,qty,unit_price,status,comment\n")
				first = false
			}
			id, d, c, reg, p, q, pr, st, cm := row(r)
			fmt.Fprintf(b, "%d,%s,%s,%s,\"%s\",%d,%.2f,%s,%s\n", id, d, c, reg, strings.ReplaceAll(p, `"`, `""`), q, pr, st, cm)
		}}
	}},
	{"model-text", func(seed uint64, size int64) io.Reader {
		r := rand.New(rand.NewPCG(seed, 3))
		return &genReader{left: size, next: func(b *bytes.Buffer) {
			if r.IntN(8) == 0 {
				fmt.Fprintf(b, "\n## %s\n\n", strings.ToUpper(sentence(r, 3)))
			}
			for i := 0; i < 3+r.IntN(5); i++ {
				s := sentence(r, 8+r.IntN(20))
				b.WriteString(strings.ToUpper(s[:1]) + s[1:] + ". ")
			}
			b.WriteString("\n\n")
		}}
	}},
	{"api-json", func(seed uint64, size int64) io.Reader {
		r := rand.New(rand.NewPCG(seed, 4))
		return &genReader{left: size, next: func(b *bytes.Buffer) {
			fmt.Fprintf(b, `{"id":"%016x%016x","type":"order","attributes":{"created_at":"2026-%02d-%02dT%02d:%02d:%02dZ","total":{"amount":%d,"currency":"EUR"},"customer":{"name":"%s %s","email":"%s.%s@example.com"},"lines":[`,
				r.Uint64(), r.Uint64(), 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1e6),
				first[r.IntN(len(first))], last[r.IntN(len(last))], strings.ToLower(first[r.IntN(len(first))]), strings.ToLower(last[r.IntN(len(last))]))
			for i, n := 0, 1+r.IntN(4); i < n; i++ {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(b, `{"sku":"SKU-%06d","name":"%s","qty":%d}`, r.IntN(1e6), products[r.IntN(len(products))], 1+r.IntN(20))
			}
			b.WriteString("]}}\n")
		}}
	}},
}
