package svgplot

import (
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"
)

// wellFormed parses s as XML and returns the number of elements.
func wellFormed(t *testing.T, s string) int {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	n := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, s)
		}
		if _, ok := tok.(xml.StartElement); ok {
			n++
		}
	}
}

func TestChart(t *testing.T) {
	c := Chart{
		Title: "raw <vs> wire", XLabel: "time", YLabel: "bytes", YZero: true,
		Series: []Series{
			{Name: "raw", Color: "#c33", X: []float64{0, 1, 2, 3}, Y: []float64{0, 100, 250, 400}},
			{Name: "wire", Color: "#36c", Dash: true, X: []float64{0, 1, 2, 3}, Y: []float64{0, 10, math.NaN(), 40}},
		},
		XFormat: Duration,
	}
	s := c.SVG()
	wellFormed(t, s)
	for _, want := range []string{`data-name="raw" data-points="4"`, `data-name="wire" data-points="3"`, "raw &lt;vs&gt; wire", "stroke-dasharray"} {
		if !strings.Contains(s, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if strings.Contains(s, "no data yet") {
		t.Error("chart with data says no data")
	}
	empty := Chart{Title: "x", Series: []Series{{Name: "raw"}}}.SVG()
	wellFormed(t, empty)
	if !strings.Contains(empty, "no data yet") {
		t.Error("empty chart does not say so")
	}
	// One point, flat values: no division by zero.
	one := Chart{Series: []Series{{Name: "a", X: []float64{5}, Y: []float64{7}}}}.SVG()
	if strings.Contains(one, "NaN") || strings.Contains(one, "Inf") {
		t.Errorf("one-point chart has NaN/Inf: %s", one)
	}
}

func TestHistogram(t *testing.T) {
	h := Histogram{Title: "latency", Labels: []string{"<1s", "1-2s", "2-4s"}, Counts: []float64{3, 0, 9}}
	s := h.SVG()
	wellFormed(t, s)
	if got := strings.Count(s, `class="bar"`); got != 3 {
		t.Errorf("%d bars, want 3", got)
	}
	if !strings.Contains(s, `data-count="9"`) {
		t.Error("bar of 9 missing")
	}
	if s := (Histogram{}).SVG(); !strings.Contains(s, "no data yet") {
		t.Error("empty histogram does not say so")
	}
}

func TestTicksAndFormat(t *testing.T) {
	for _, c := range []struct {
		lo, hi float64
		first  float64
		step   float64
	}{{0, 97, 0, 20}, {0, 1, 0, 0.2}, {1200, 5300, 1000, 1000}, {0, 12345, 0, 5000}} {
		tk := Ticks(c.lo, c.hi, 5)
		if tk[0] != c.first || math.Abs(tk[1]-tk[0]-c.step) > 1e-9 || tk[len(tk)-1] < c.hi {
			t.Errorf("Ticks(%v, %v) = %v", c.lo, c.hi, tk)
		}
	}
	for v, want := range map[float64]string{950: "950", 1500: "1.5k", 12e6: "12M", 2.5e9: "2.5G", 0.25: "0.2", 15000: "15k"} {
		if got := Human(v); got != want {
			t.Errorf("Human(%v) = %q, want %q", v, got, want)
		}
	}
	for v, want := range map[float64]string{45: "45s", 150: "2m30s", 120: "2m", 3900: "1h05m"} {
		if got := Duration(v); got != want {
			t.Errorf("Duration(%v) = %q, want %q", v, got, want)
		}
	}
}
