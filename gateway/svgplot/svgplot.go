package svgplot

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// Series is one line of a Chart.
type Series struct {
	Name  string
	Color string // CSS color
	Dash  bool   // dashed line
	X, Y  []float64
}

// Chart is a line chart.
type Chart struct {
	Title          string
	XLabel, YLabel string
	Width, Height  int // pixels (default 720×260)
	Series         []Series
	// XFormat and YFormat format tick labels (default: Human).
	XFormat, YFormat func(float64) string
	// YZero starts the y axis at 0 (otherwise at the data's minimum).
	YZero bool
}

// Plot area margins.
const (
	marginL = 64
	marginR = 16
	marginT = 40 // title, then the legend
	marginB = 40
)

// SVG renders the chart. A chart without points renders its frame and a
// "no data yet" note.
func (c Chart) SVG() string {
	w, h := c.Width, c.Height
	if w <= 0 {
		w = 720
	}
	if h <= 0 {
		h = 260
	}
	xf, yf := c.XFormat, c.YFormat
	if xf == nil {
		xf = Human
	}
	if yf == nil {
		yf = Human
	}
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	points := 0
	for _, s := range c.Series {
		for i := range min(len(s.X), len(s.Y)) {
			x, y := s.X[i], s.Y[i]
			if !finite(x) || !finite(y) {
				continue
			}
			xmin, xmax = math.Min(xmin, x), math.Max(xmax, x)
			ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
			points++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`, w, h, w, h)
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#fff"/>`, w, h)
	if c.Title != "" {
		fmt.Fprintf(&b, `<text x="%d" y="16" font-size="13" font-weight="bold">%s</text>`, marginL, esc(c.Title))
	}
	pw, ph := float64(w-marginL-marginR), float64(h-marginT-marginB)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`, marginL, marginT, pw, ph)
	if points == 0 {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle" fill="#888">no data yet</text></svg>`, float64(marginL)+pw/2, float64(marginT)+ph/2)
		return b.String()
	}
	if c.YZero {
		ymin = math.Min(0, ymin)
	}
	if xmax == xmin {
		xmax = xmin + 1
	}
	if ymax == ymin {
		ymax = ymin + 1
	}
	yticks := Ticks(ymin, ymax, 5)
	ymin, ymax = math.Min(ymin, yticks[0]), math.Max(ymax, yticks[len(yticks)-1])
	px := func(x float64) float64 { return float64(marginL) + (x-xmin)/(xmax-xmin)*pw }
	py := func(y float64) float64 { return float64(marginT) + ph - (y-ymin)/(ymax-ymin)*ph }
	for _, t := range yticks {
		y := py(t)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`, marginL, y, float64(marginL)+pw, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`, marginL-4, y, esc(yf(t)))
	}
	prev := ""
	for _, t := range Ticks(xmin, xmax, 6) {
		if t < xmin || t > xmax || xf(t) == prev {
			continue // outside, or a label that rounds to the one before
		}
		prev = xf(t)
		x := px(t)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#eee"/>`, x, marginT, x, float64(marginT)+ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, x, float64(marginT)+ph+14, esc(prev))
	}
	if c.XLabel != "" {
		fmt.Fprintf(&b, `<text x="%.0f" y="%d" text-anchor="middle" fill="#555">%s</text>`, float64(marginL)+pw/2, h-6, esc(c.XLabel))
	}
	if c.YLabel != "" {
		fmt.Fprintf(&b, `<text x="12" y="%.0f" text-anchor="middle" fill="#555" transform="rotate(-90 12 %.0f)">%s</text>`, float64(marginT)+ph/2, float64(marginT)+ph/2, esc(c.YLabel))
	}
	// Legend, under the title.
	lx := float64(marginL)
	for _, s := range c.Series {
		fmt.Fprintf(&b, `<line x1="%.0f" y1="28" x2="%.0f" y2="28" stroke="%s" stroke-width="3"%s/>`, lx, lx+18, esc(s.Color), dash(s.Dash))
		fmt.Fprintf(&b, `<text x="%.0f" y="32">%s</text>`, lx+22, esc(s.Name))
		lx += float64(6*len([]rune(s.Name)) + 40)
	}
	for _, s := range c.Series {
		var pts strings.Builder
		n := 0
		for i := range min(len(s.X), len(s.Y)) {
			if !finite(s.X[i]) || !finite(s.Y[i]) {
				continue
			}
			fmt.Fprintf(&pts, "%.1f,%.1f ", px(s.X[i]), py(s.Y[i]))
			n++
		}
		fmt.Fprintf(&b, `<polyline class="series" data-name="%s" data-points="%d" fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`,
			esc(s.Name), n, esc(s.Color), dash(s.Dash), strings.TrimSpace(pts.String()))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// Histogram is a bar chart of counts per bucket.
type Histogram struct {
	Title          string
	XLabel, YLabel string
	Width, Height  int // default 720×260
	Color          string
	Labels         []string // one per bar
	Counts         []float64
}

// SVG renders the histogram.
func (hg Histogram) SVG() string {
	w, h := hg.Width, hg.Height
	if w <= 0 {
		w = 720
	}
	if h <= 0 {
		h = 260
	}
	color := hg.Color
	if color == "" {
		color = "#3b7dd8"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`, w, h, w, h)
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#fff"/>`, w, h)
	if hg.Title != "" {
		fmt.Fprintf(&b, `<text x="%d" y="16" font-size="13" font-weight="bold">%s</text>`, marginL, esc(hg.Title))
	}
	pw, ph := float64(w-marginL-marginR), float64(h-marginT-marginB)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`, marginL, marginT, pw, ph)
	top := 0.0
	for _, c := range hg.Counts {
		top = math.Max(top, c)
	}
	if len(hg.Counts) == 0 || top == 0 {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle" fill="#888">no data yet</text></svg>`, float64(marginL)+pw/2, float64(marginT)+ph/2)
		return b.String()
	}
	ticks := Ticks(0, top, 5)
	top = math.Max(top, ticks[len(ticks)-1])
	for _, t := range ticks {
		y := float64(marginT) + ph - t/top*ph
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`, marginL, y, float64(marginL)+pw, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`, marginL-4, y, esc(Human(t)))
	}
	bw := pw / float64(len(hg.Counts))
	every := max(1, int(math.Ceil(float64(len(hg.Counts))*40/pw))) // label spacing
	for i, c := range hg.Counts {
		x := float64(marginL) + float64(i)*bw
		bh := c / top * ph
		fmt.Fprintf(&b, `<rect class="bar" data-count="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`,
			strconv.FormatFloat(c, 'f', -1, 64), x+1, float64(marginT)+ph-bh, math.Max(bw-2, 1), bh, esc(color))
		if i < len(hg.Labels) && i%every == 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, x+bw/2, float64(marginT)+ph+14, esc(hg.Labels[i]))
		}
	}
	if hg.XLabel != "" {
		fmt.Fprintf(&b, `<text x="%.0f" y="%d" text-anchor="middle" fill="#555">%s</text>`, float64(marginL)+pw/2, h-6, esc(hg.XLabel))
	}
	if hg.YLabel != "" {
		fmt.Fprintf(&b, `<text x="12" y="%.0f" text-anchor="middle" fill="#555" transform="rotate(-90 12 %.0f)">%s</text>`, float64(marginT)+ph/2, float64(marginT)+ph/2, esc(hg.YLabel))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// Ticks returns about n round tick values (steps of 1, 2 or 5 × 10^k)
// covering lo..hi.
func Ticks(lo, hi float64, n int) []float64 {
	if !finite(lo) || !finite(hi) || hi <= lo || n < 1 {
		return []float64{lo}
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var t []float64
	for v := math.Floor(lo/step) * step; v <= hi+step*1e-9; v += step {
		t = append(t, math.Round(v/step)*step)
		if len(t) > 4*n {
			break
		}
	}
	if t[len(t)-1] < hi {
		t = append(t, t[len(t)-1]+step)
	}
	return t
}

// Human formats a number with k/M/G suffixes: 950, 1.5k, 12M.
func Human(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return trim(v/1e9) + "G"
	case a >= 1e6:
		return trim(v/1e6) + "M"
	case a >= 1e3:
		return trim(v/1e3) + "k"
	}
	return trim(v)
}

// Duration formats seconds as 45s, 2m30s or 1h05m.
func Duration(sec float64) string {
	s := int(math.Round(sec))
	switch {
	case s < 60 && s > -60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		if s%60 == 0 {
			return fmt.Sprintf("%dm", s/60)
		}
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
}

func trim(v float64) string {
	if v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	if math.Abs(v) >= 10 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strings.TrimRight(strings.TrimRight(strconv.FormatFloat(v, 'f', 1, 64), "0"), ".")
}

func dash(d bool) string {
	if d {
		return ` stroke-dasharray="6 3"`
	}
	return ""
}

func esc(s string) string { return html.EscapeString(s) }

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
