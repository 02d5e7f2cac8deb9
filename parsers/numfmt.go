package parsers

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

var appendRune = utf8.AppendRune

// builtinNumFmts are the format codes of Excel's built-in number formats
// (ECMA-376 part 1, 18.8.30), as displayed in the en-US locale.
var builtinNumFmts = map[int]string{
	0: "General", 1: "0", 2: "0.00", 3: "#,##0", 4: "#,##0.00",
	9: "0%", 10: "0.00%", 11: "0.00E+00", 12: "# ?/?", 13: "# ??/??",
	14: "m/d/yyyy", 15: "d-mmm-yy", 16: "d-mmm", 17: "mmm-yy",
	18: "h:mm AM/PM", 19: "h:mm:ss AM/PM", 20: "h:mm", 21: "h:mm:ss", 22: "m/d/yyyy h:mm",
	37: "#,##0 ;(#,##0)", 38: "#,##0 ;(#,##0)", 39: "#,##0.00;(#,##0.00)", 40: "#,##0.00;(#,##0.00)",
	45: "mm:ss", 46: "[h]:mm:ss", 47: "mm:ss.0", 48: "##0.0E+0", 49: "@",
}

// numFmt is a compiled number format. It renders the common cases exactly
// (General, fixed decimals, thousands separators, percent, scientific,
// dates and times); unusual codes (fractions, conditions, colours) fall
// back to the General rendering of the value.
type numFmt struct {
	code      string
	general   bool
	date      bool
	parts     []datePart // date formats
	decimals  int
	thousands bool
	percent   bool
	sci       bool
	prefix    string // literal text before the number
	suffix    string // literal text after the number
	negParens bool
}

type datePart struct {
	lit   string
	kind  byte // 0 literal, 'y','Y'(yy),'M'(month num),'N'(mmm),'O'(mmmm),'d','D'(dd),'a'(ddd),'A'(dddd),'h','H'(hh),'m','n'(mm minutes),'s','S'(ss),'p'(AM/PM),'f'(fraction)
	width int
}

func compileNumFmt(code string) *numFmt {
	f := &numFmt{code: code}
	if code == "" || strings.EqualFold(code, "General") || code == "@" {
		f.general = true
		return f
	}
	sections := splitSections(code)
	first := stripBrackets(sections[0])
	if len(sections) > 1 && strings.Contains(sections[1], "(") {
		f.negParens = true
	}
	if isDateCode(first) {
		f.date = true
		f.parts = compileDate(first)
		return f
	}
	// number: literal prefix, digits pattern, literal suffix
	s := unquote(first)
	start := strings.IndexAny(s, "0#?")
	if start < 0 {
		f.general = true
		return f
	}
	end := strings.LastIndexAny(s, "0#?") + 1
	f.prefix = strings.TrimSpace(strings.Trim(s[:start], "_-* "))
	f.suffix = s[end:]
	pat := s[start:end]
	f.sci = strings.ContainsAny(s, "Ee")
	if f.sci {
		pat = s[start:strings.IndexAny(s, "Ee")]
		f.suffix = ""
	}
	f.thousands = strings.Contains(pat, ",")
	if i := strings.Index(pat, "."); i >= 0 {
		f.decimals = strings.Count(pat[i:], "0") + strings.Count(pat[i:], "#") + strings.Count(pat[i:], "?")
	}
	f.percent = strings.Contains(f.suffix, "%") || strings.Contains(f.prefix, "%")
	f.suffix = strings.TrimRight(f.suffix, " _)")
	return f
}

func splitSections(code string) []string {
	var out []string
	inQ := false
	last := 0
	for i := 0; i < len(code); i++ {
		switch code[i] {
		case '"':
			inQ = !inQ
		case '\\':
			i++
		case ';':
			if !inQ {
				out = append(out, code[last:i])
				last = i + 1
			}
		}
	}
	return append(out, code[last:])
}

// stripBrackets removes [Red], [$-409], [>100] but keeps elapsed-time
// markers such as [h].
func stripBrackets(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '[' {
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				break
			}
			inner := strings.ToLower(s[i+1 : i+j])
			if inner == "h" || inner == "hh" || inner == "m" || inner == "mm" || inner == "s" || inner == "ss" {
				b.WriteString(inner)
			} else if strings.HasPrefix(inner, "$") {
				if k := strings.IndexByte(inner, '-'); k > 1 {
					b.WriteString(s[i+2 : i+1+k]) // currency symbol
				} else if k < 0 {
					b.WriteString(s[i+2 : i+j])
				}
			}
			i += j
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unquote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				b.WriteString(s[i+1:])
				return b.String()
			}
			b.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case '\\':
			if i+1 < len(s) {
				b.WriteByte(s[i+1])
				i++
			}
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func isDateCode(s string) bool {
	inQ := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			inQ = !inQ
		case inQ:
		case c == '\\':
			i++
		case c == 'y' || c == 'Y' || c == 'd' || c == 'D' || c == 'h' || c == 'H' || c == 's' || c == 'S' || c == 'm' || c == 'M':
			return true
		}
	}
	return false
}

func compileDate(s string) []datePart {
	var parts []datePart
	lower := strings.ToLower(s)
	lit := func(t string) { parts = append(parts, datePart{lit: t}) }
	for i := 0; i < len(s); {
		c := lower[i]
		run := 1
		for i+run < len(s) && lower[i+run] == c {
			run++
		}
		switch {
		case s[i] == '"':
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				lit(s[i+1:])
				return parts
			}
			lit(s[i+1 : i+1+j])
			i += j + 2
			continue
		case s[i] == '\\' && i+1 < len(s):
			lit(s[i+1 : i+2])
			i += 2
			continue
		case strings.HasPrefix(lower[i:], "am/pm"):
			parts = append(parts, datePart{kind: 'p'})
			i += 5
			continue
		case strings.HasPrefix(lower[i:], "a/p"):
			parts = append(parts, datePart{kind: 'p'})
			i += 3
			continue
		case c == 'y':
			k := byte('y')
			if run <= 2 {
				k = 'Y'
			}
			parts = append(parts, datePart{kind: k})
		case c == 'm':
			parts = append(parts, datePart{kind: 'M', width: run})
		case c == 'd':
			parts = append(parts, datePart{kind: 'd', width: run})
		case c == 'h':
			parts = append(parts, datePart{kind: 'h', width: run})
		case c == 's':
			parts = append(parts, datePart{kind: 's', width: run})
		case c == '.' && i+1 < len(s) && lower[i+1] == '0':
			n := 0
			for i+1+n < len(s) && lower[i+1+n] == '0' {
				n++
			}
			parts = append(parts, datePart{kind: 'f', width: n})
			i += 1 + n
			continue
		default:
			lit(s[i : i+1])
			i++
			continue
		}
		i += run
	}
	// m/mm after h or before s means minutes.
	for i := range parts {
		if parts[i].kind != 'M' || parts[i].width > 2 {
			continue
		}
		prev, next := prevKind(parts, i), nextKind(parts, i)
		if prev == 'h' || next == 's' {
			parts[i].kind = 'n'
		}
	}
	return parts
}

func prevKind(p []datePart, i int) byte {
	for j := i - 1; j >= 0; j-- {
		if p[j].kind != 0 {
			return p[j].kind
		}
	}
	return 0
}

func nextKind(p []datePart, i int) byte {
	for j := i + 1; j < len(p); j++ {
		if p[j].kind != 0 {
			return p[j].kind
		}
	}
	return 0
}

// cell renders v with the format.
func (f *numFmt) cell(v float64, date1904 bool) Cell {
	if f.date {
		t, ok := excelTime(v, date1904)
		if !ok {
			return Cell{Kind: KindNumber, Number: v, Text: formatGeneral(v)}
		}
		return Cell{Kind: KindDate, Number: v, Time: t, Text: f.renderDate(t, v)}
	}
	return Cell{Kind: KindNumber, Number: v, Text: f.renderNumber(v)}
}

func (f *numFmt) renderNumber(v float64) string {
	if f.general || math.IsNaN(v) || math.IsInf(v, 0) {
		return formatGeneral(v)
	}
	neg := v < 0
	a := math.Abs(v)
	if f.percent {
		a *= 100
	}
	var s string
	if f.sci {
		s = strconv.FormatFloat(a, 'E', f.decimals, 64)
		if i := strings.IndexByte(s, 'E'); i >= 0 && len(s)-i == 4 { // E+05 -> E+05 already; Go gives E+05
			_ = i
		}
	} else {
		s = strconv.FormatFloat(a, 'f', f.decimals, 64)
		if f.thousands {
			s = groupThousands(s)
		}
	}
	s = f.prefix + s + f.suffix
	if neg && s != strings.Repeat("0", len(s)) {
		if f.negParens {
			return "(" + s + ")"
		}
		return "-" + s
	}
	return s
}

func groupThousands(s string) string {
	intPart, frac := s, ""
	if i := strings.IndexByte(s, '.'); i >= 0 {
		intPart, frac = s[:i], s[i:]
	}
	if len(intPart) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(intPart) % 3
	if pre > 0 {
		b.WriteString(intPart[:pre])
	}
	for i := pre; i < len(intPart); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(intPart[i : i+3])
	}
	return b.String() + frac
}

// formatGeneral renders like Excel's General format for typical values:
// up to 11 significant digits, no trailing zeros.
func formatGeneral(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	a := math.Abs(v)
	if a >= 1e11 || (a != 0 && a < 1e-9) {
		s := strconv.FormatFloat(v, 'E', 5, 64)
		i := strings.IndexByte(s, 'E')
		m := strings.TrimRight(strings.TrimRight(s[:i], "0"), ".")
		return m + s[i:]
	}
	s := strconv.FormatFloat(v, 'g', 11, 64)
	if strings.ContainsAny(s, "eE") {
		s = strconv.FormatFloat(v, 'f', -1, 64)
	}
	return s
}

var monthNames = [...]string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}
var dayNames = [...]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}

func (f *numFmt) renderDate(t time.Time, serial float64) string {
	ampm := false
	for _, p := range f.parts {
		if p.kind == 'p' {
			ampm = true
		}
	}
	var b []byte
	pad := func(n, w int) {
		s := strconv.Itoa(n)
		for i := len(s); i < w; i++ {
			b = append(b, '0')
		}
		b = append(b, s...)
	}
	for _, p := range f.parts {
		switch p.kind {
		case 0:
			b = append(b, p.lit...)
		case 'y':
			pad(t.Year(), 4)
		case 'Y':
			pad(t.Year()%100, 2)
		case 'M':
			switch {
			case p.width >= 5:
				b = append(b, monthNames[t.Month()-1][0])
			case p.width == 4:
				b = append(b, monthNames[t.Month()-1]...)
			case p.width == 3:
				b = append(b, monthNames[t.Month()-1][:3]...)
			default:
				pad(int(t.Month()), p.width)
			}
		case 'n':
			pad(t.Minute(), p.width)
		case 'd':
			switch {
			case p.width >= 4:
				b = append(b, dayNames[t.Weekday()]...)
			case p.width == 3:
				b = append(b, dayNames[t.Weekday()][:3]...)
			default:
				pad(t.Day(), p.width)
			}
		case 'h':
			h := t.Hour()
			if ampm {
				h %= 12
				if h == 0 {
					h = 12
				}
			}
			pad(h, p.width)
		case 's':
			pad(t.Second(), p.width)
		case 'f':
			ms := t.Nanosecond() / 1e6
			s := strconv.Itoa(1000 + ms)[1:]
			b = append(b, '.')
			b = append(b, s[:min(p.width, 3)]...)
		case 'p':
			if t.Hour() < 12 {
				b = append(b, "AM"...)
			} else {
				b = append(b, "PM"...)
			}
		}
	}
	return string(b)
}

// maxSerial is 9999-12-31, Excel's last date.
const maxSerial = 2958465

// excelTime converts an Excel serial date to UTC, rounded to the
// millisecond. The 1900 system keeps Excel's fictitious 1900-02-29
// (serial 60), shown as 1900-02-28.
func excelTime(v float64, date1904 bool) (time.Time, bool) {
	if v < 0 || v > maxSerial+1 || math.IsNaN(v) {
		return time.Time{}, false
	}
	var base time.Time
	switch {
	case date1904:
		base = time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC)
	case v < 61:
		base = time.Date(1899, 12, 31, 0, 0, 0, 0, time.UTC)
		if v >= 60 {
			v--
		}
	default:
		base = time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC)
	}
	days := math.Floor(v)
	ms := math.Round((v - days) * 86400000)
	return base.AddDate(0, 0, int(days)).Add(time.Duration(ms) * time.Millisecond), true
}
