package bench

import (
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// write writes summary.md, results.json and one SVG chart per workflow.
func write(dir string, res *Results) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	b, err := json.MarshalIndent(res, "", " ")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	charts := map[string]string{}
	for _, w := range workflowNames(res.Cases) {
		name := w + ".svg"
		if err := chart(filepath.Join(dir, name), w, res); err != nil {
			return err
		}
		charts[w] = name
	}
	if len(res.Cases) > 0 {
		if err := summaryChart(filepath.Join(dir, "summary.svg"), res); err != nil {
			return err
		}
		charts[""] = "summary.svg"
	}
	if err := os.WriteFile(filepath.Join(dir, "summary.md"), []byte(Markdown(res, charts)), 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

func workflowNames(cases []*Case) []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range cases {
		if !seen[c.Workflow] {
			seen[c.Workflow] = true
			out = append(out, c.Workflow)
		}
	}
	return out
}

// mib formats bytes as MiB with one decimal.
func mib(b float64) string { return fmt.Sprintf("%.1f", b/(1<<20)) }

// Markdown renders the results as the summary table; charts maps a
// workflow to its chart file name (relative links).
func Markdown(res *Results, charts map[string]string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# dagrun bench: memory per workflow\n\n")
	fmt.Fprintf(&sb, "%s, %s, %d CPUs; %d runs per case, median (min–max). Load average before %s, after %s. Started %s, took %.0f s.\n\n",
		res.Host.GoVersion, res.Host.OS, res.Host.CPUs, res.Runs, res.Host.LoadBefore, res.Host.LoadAfter, res.Started.UTC().Format("2006-01-02 15:04 MST"), res.Duration)
	if len(res.Host.Environment) > 0 {
		fmt.Fprintf(&sb, "Environment: %v\n\n", res.Host.Environment)
	}
	sb.WriteString("Worker RSS = the kernel's VmHWM of the `dagrun run` process alone (child processes excluded). " +
		"rusage = ru_maxrss from wait4, which is the larger of the worker and its largest child (node.js). MiB throughout.\n\n")
	if f := res.Floor; f != nil && len(f.Runs) > 0 {
		fmt.Fprintf(&sb, "Floor: `dagrun run` of a one-node workflow that does almost nothing peaks at %s MiB (%s–%s) worker RSS: the Go runtime, the 40 MB binary's mapped code and the executor. No workflow can go below it.\n\n",
			mib(float64(f.Median.WorkerHWM)), mib(float64(f.Min.WorkerHWM)), mib(float64(f.Max.WorkerHWM)))
	}
	if f := charts[""]; f != "" {
		fmt.Fprintf(&sb, "![peak RSS per workflow and mode](%s)\n\n", f)
	}
	sb.WriteString("| workflow | nodes | mode | worker RSS | rusage maxRSS | Go heap | live outputs | child peak | spilled | wall s |\n")
	sb.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range res.Cases {
		if c.Skipped != "" {
			fmt.Fprintf(&sb, "| %s | %d | %s | skipped: %s | | | | | | |\n", c.Workflow, c.Nodes, c.Mode, c.Skipped)
			continue
		}
		if len(c.Runs) == 0 {
			fmt.Fprintf(&sb, "| %s | %d | %s | failed: %s | | | | | | |\n", c.Workflow, c.Nodes, c.Mode, oneLine(c.Error))
			continue
		}
		r := func(get func(Figures) int64) string {
			if get(c.Max) == 0 {
				return "0"
			}
			if len(c.Runs) == 1 {
				return mib(float64(get(c.Median)))
			}
			return fmt.Sprintf("%s (%s–%s)", mib(float64(get(c.Median))), mib(float64(get(c.Min))), mib(float64(get(c.Max))))
		}
		wall := fmt.Sprintf("%.2f", c.Median.Wall)
		if len(c.Runs) > 1 {
			wall = fmt.Sprintf("%.2f (%.2f–%.2f)", c.Median.Wall, c.Min.Wall, c.Max.Wall)
		}
		fail := ""
		if c.Error != "" {
			fail = fmt.Sprintf(" (%d of %d runs failed: %s)", res.Runs-len(c.Runs), res.Runs, oneLine(c.Error))
		}
		fmt.Fprintf(&sb, "| %s | %d | %s | **%s**%s | %s | %s | %s | %s | %s | %s |\n", c.Workflow, c.Nodes, c.Mode,
			r(func(f Figures) int64 { return f.WorkerHWM }), fail, r(func(f Figures) int64 { return f.RusageMaxRSS }),
			r(func(f Figures) int64 { return f.PeakHeap }), r(func(f Figures) int64 { return f.PeakLiveOutputs }),
			r(func(f Figures) int64 { return f.ChildPeak }), r(func(f Figures) int64 { return f.Spilled }), wall)
	}
	var gaps []string
	for _, c := range res.Cases {
		if c.MaxSampleGap > 0.05 {
			gaps = append(gaps, fmt.Sprintf("%s %s (%.2f s)", c.Workflow, c.Mode, c.MaxSampleGap))
		}
	}
	if len(gaps) > 0 {
		fmt.Fprintf(&sb, "\nThe ~10 ms RSS sampler was held up for more than 50 ms (machine load) in: %s. Only the charts are affected: the RSS, heap and spill figures do not come from sampling.\n", strings.Join(gaps, "; "))
	}
	if len(res.Checks) > 0 {
		sb.WriteString("\n## Targets\n\n| workflow | target | value MiB | limit MiB | met |\n|---|---|---|---|---|\n")
		for _, c := range res.Checks {
			met := "yes"
			if !c.Pass {
				met = "**MISSED**"
			}
			fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s |\n", c.Workflow, c.Target, fmt.Sprintf("%.2f", c.Value/(1<<20)), fmt.Sprintf("%.2f", c.Limit/(1<<20)), met)
		}
	}
	if len(res.Peers) > 0 {
		sb.WriteString("\n## xlsx parsers on the same files\n\nEach in its own process; peak RSS from wait4 rusage; seconds = the parse alone. Ratios are to dagrun-xlsx on the same file (above 1: more than dagrun).\n\n")
		sb.WriteString("| file | method | runs | rows | peak RSS MiB | seconds | RSS ratio | time ratio |\n|---|---|---|---|---|---|---|---|\n")
		for _, p := range res.Peers {
			if p.RSS[0] == 0 {
				fmt.Fprintf(&sb, "| %s | %s | %d | | failed: %s | | | |\n", p.File, p.Method, p.Runs, oneLine(p.Error))
				continue
			}
			fmt.Fprintf(&sb, "| %s (%s MB) | %s | %d | %d | %s (%s–%s) | %.2f (%.2f–%.2f) | %.2f | %.2f |\n", p.File, fmt.Sprintf("%.1f", float64(p.FileBytes)/1e6),
				p.Method, p.Runs, p.Rows, mib(p.RSS[0]), mib(p.RSS[1]), mib(p.RSS[2]), p.Seconds[0], p.Seconds[1], p.Seconds[2], p.RSSRatio, p.TimeRatio)
		}
	}
	if len(res.Skipped) > 0 {
		sb.WriteString("\n## Skipped\n\n")
		for _, s := range res.Skipped {
			fmt.Fprintf(&sb, "- %s\n", s)
		}
	}
	sb.WriteString("\n## Modes\n\n")
	for _, m := range res.Modes {
		fmt.Fprintf(&sb, "- **%s**: %s\n", m.Name, m.Doc)
	}
	if len(charts) > 0 {
		sb.WriteString("\n## Memory over time\n\nRSS of the worker process sampled every ~10 ms (the run with the median worker RSS of each mode).\n\n")
		for _, w := range workflowNames(res.Cases) {
			if f := charts[w]; f != "" {
				fmt.Fprintf(&sb, "![%s](%s)\n\n", w, f)
			}
		}
	}
	return sb.String()
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// modeColors gives each mode a fixed colour: red for the incident.
var modeColors = map[string]color.RGBA{
	ModeIncident:   {R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	ModeEvict:      {R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	ModeStream:     {R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	ModeSpillDir:   {R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	ModeSpillRedis: {R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
}

// Chart geometry.
const (
	chartW   = 9 * vg.Inch
	chartH   = 4.5 * vg.Inch
	legendW  = 3.3 * vg.Inch
	fontSize = 10
)

// chart draws the RSS-over-time lines of one workflow, one per mode, with
// the 64 MiB target as a dashed line and the legend to the right.
func chart(path, wf string, res *Results) error {
	p := plot.New()
	p.Title.Text = wf + ": RSS of the worker process over time"
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = "seconds since the process started"
	p.Y.Label.Text = "RSS (MiB)"
	p.Y.Min = 0
	p.X.Min = 0
	p.Add(plotter.NewGrid())
	leg := plot.NewLegend()
	maxT, maxY := 0.0, 64.0
	for _, c := range res.Cases {
		if c.Workflow != wf || len(c.Timeline) == 0 {
			continue
		}
		xys := make(plotter.XYs, len(c.Timeline))
		for j, s := range c.Timeline {
			xys[j].X, xys[j].Y = s.T, float64(s.RSS)/(1<<20)
			maxT, maxY = max(maxT, s.T), max(maxY, xys[j].Y)
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("bench: chart %s: %w", wf, err)
		}
		l.Color = modeColors[c.Mode]
		l.Width = vg.Points(1.5)
		if c.Mode == ModeSpillRedis {
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(2)}
		}
		p.Add(l)
		leg.Add(fmt.Sprintf("%s  %s MiB", c.Mode, mib(float64(c.Median.WorkerHWM))), l)
	}
	if maxT > 0 {
		target, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 64}, {X: maxT, Y: 64}})
		if err != nil {
			return fmt.Errorf("bench: chart %s: %w", wf, err)
		}
		target.Color = color.Gray{Y: 0x60}
		target.Dashes = []vg.Length{vg.Points(2), vg.Points(3)}
		p.Add(target)
		leg.Add("64 MiB target", target)
	}
	if f := res.Floor; f != nil && len(f.Runs) > 0 && maxT > 0 {
		y := float64(f.Median.WorkerHWM) / (1 << 20)
		fl, err := plotter.NewLine(plotter.XYs{{X: 0, Y: y}, {X: maxT, Y: y}})
		if err != nil {
			return fmt.Errorf("bench: chart %s: %w", wf, err)
		}
		fl.Color = color.Gray{Y: 0xa0}
		fl.Width = vg.Points(0.8)
		p.Add(fl)
		leg.Add(fmt.Sprintf("floor (empty run) %s MiB", mib(float64(f.Median.WorkerHWM))), fl)
	}
	p.Y.Max = maxY * 1.05
	p.Y.Tick.Marker = niceTicks{unit: "", steps: []float64{8, 16, 32, 64, 128, 256, 512, 1024, 2048}}
	p.X.Tick.Marker = niceTicks{steps: []float64{0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120}}
	return saveWithLegend(path, p, leg, "legend: median peak (worker VmHWM)")
}

// saveWithLegend draws p with leg in a panel to its right and writes SVG.
func saveWithLegend(path string, p *plot.Plot, leg plot.Legend, note string) error {
	c := vgsvg.New(chartW, chartH)
	dc := draw.New(c)
	p.Draw(draw.Crop(dc, 0, -legendW, 0, 0))
	leg.Top, leg.Left = true, true
	leg.TextStyle.Font.Size = vg.Points(fontSize)
	leg.ThumbnailWidth = vg.Points(24)
	leg.Padding = vg.Points(4)
	panel := draw.Crop(dc, chartW-legendW+vg.Points(10), 0, 0, -vg.Points(30))
	leg.Draw(panel)
	if note != "" {
		sty := leg.TextStyle
		sty.Font.Size = vg.Points(fontSize - 1)
		sty.Color = color.Gray{Y: 0x50}
		dc.FillText(sty, vg.Point{X: panel.Min.X, Y: vg.Points(12)}, note)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: chart: %w", err)
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("bench: chart %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("bench: chart %s: %w", path, err)
	}
	return nil
}

// niceTicks labels an axis with the smallest step of steps that gives at
// most 8 labelled ticks.
type niceTicks struct {
	unit  string
	steps []float64
}

// Ticks implements plot.Ticker.
func (n niceTicks) Ticks(lo, hi float64) []plot.Tick {
	step := n.steps[len(n.steps)-1]
	for _, s := range n.steps {
		if (hi-lo)/s <= 8 {
			step = s
			break
		}
	}
	var out []plot.Tick
	for k := math.Ceil(lo / step); k*step <= hi+step*1e-9; k++ {
		v := k * step
		out = append(out, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', 6, 64) + n.unit})
		if mid := v + step/2; mid < hi {
			out = append(out, plot.Tick{Value: mid})
		}
	}
	return out
}

// summaryChart draws grouped bars: median worker RSS per workflow, one bar
// per mode.
func summaryChart(path string, res *Results) error {
	wfs := workflowNames(res.Cases)
	p := plot.New()
	p.Title.Text = "Peak RSS of the worker per workflow and mode (median)"
	p.Title.Padding = vg.Points(6)
	p.Y.Label.Text = "peak RSS (MiB)"
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	leg := plot.NewLegend()
	w := vg.Points(10)
	maxY := 64.0
	for i, m := range res.Modes {
		vals := make(plotter.Values, len(wfs))
		for j, wf := range wfs {
			for _, c := range res.Cases {
				if c.Workflow == wf && c.Mode == m.Name && len(c.Runs) > 0 {
					vals[j] = float64(c.Median.WorkerHWM) / (1 << 20)
					maxY = max(maxY, vals[j])
				}
			}
		}
		b, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return fmt.Errorf("bench: summary chart: %w", err)
		}
		b.Color = modeColors[m.Name]
		b.LineStyle.Width = 0
		b.Offset = w * vg.Length(float64(i)-float64(len(res.Modes)-1)/2)
		p.Add(b)
		leg.Add(m.Name, b)
	}
	target, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: 64}, {X: float64(len(wfs)) - 0.5, Y: 64}})
	if err != nil {
		return fmt.Errorf("bench: summary chart: %w", err)
	}
	target.Color = color.Gray{Y: 0x60}
	target.Dashes = []vg.Length{vg.Points(2), vg.Points(3)}
	p.Add(target)
	leg.Add("64 MiB target", target)
	if f := res.Floor; f != nil && len(f.Runs) > 0 {
		y := float64(f.Median.WorkerHWM) / (1 << 20)
		fl, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: y}, {X: float64(len(wfs)) - 0.5, Y: y}})
		if err != nil {
			return fmt.Errorf("bench: summary chart: %w", err)
		}
		fl.Color = color.Gray{Y: 0x40}
		fl.Width = vg.Points(0.8)
		p.Add(fl)
		leg.Add(fmt.Sprintf("floor (empty run) %s MiB", mib(float64(f.Median.WorkerHWM))), fl)
	}
	labels := make([]string, len(wfs))
	for i, wf := range wfs {
		labels[i] = strings.Replace(wf, "-", "\n", 1)
	}
	p.NominalX(labels...)
	p.Y.Max = maxY * 1.05
	p.Y.Tick.Marker = niceTicks{steps: []float64{8, 16, 32, 64, 128, 256, 512, 1024, 2048}}
	return saveWithLegend(path, p, leg, "worker VmHWM, child processes excluded")
}
